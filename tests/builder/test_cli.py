"""`imagesmith build` as a user runs it, for the answers that need no engine: bad input is one line
with exit 2, a missing engine one line with exit 3."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

FIXTURE = Path(__file__).parent / "fixtures" / "small"


def _run(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    if not (tmp_path / "p").exists():
        shutil.copytree(FIXTURE, tmp_path / "p")
    return subprocess.run(
        [sys.executable, "-m", "imagesmith", "build", "--plan", "p/plan.json", *args],
        cwd=tmp_path,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (("--base-image", "bookworm"), "--base-image bookworm: expected NAME=REF"),
        (
            ("--base-image", "bookwrom=x"),
            "--base-image: unknown OS base 'bookwrom' (closest known: bookworm)",
        ),
        (("cudart-12.8",), "IMAGE: unknown image 'cudart-12.8' (closest known: cudart-12.9-py3.11-bookworm)"),
        (("--ca-cert", "p/plan.json"), "--ca-cert p/plan.json: not a PEM certificate"),
        (("--ca-cert", "p/missing.pem"), "--ca-cert p/missing.pem: cannot read CA certificate"),
        (("--jobs", "0"), "0 is not in the range x>=1"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, args: tuple[str, ...], line: str) -> None:
    proc = _run(tmp_path, *args)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and line in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def test_missing_plan_says_how_to_make_one(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "imagesmith", "build"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr == (
        "imagesmith: error: base_images/plan.json: no such plan file (run `imagesmith images render` first "
        "or pass --plan)\n"
    )


def test_unreachable_engine_is_an_environment_problem(tmp_path: Path) -> None:
    proc = _run(tmp_path, env={"DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock"})
    assert proc.returncode == 3, proc.stderr
    assert proc.stderr.count("\n") == 1
    assert proc.stderr.startswith(
        f"imagesmith: error: no Docker engine answers at unix://{tmp_path}/no-engine.sock"
    )
    assert not (tmp_path / "imagesmith-build").exists()
