"""`imagesmith --version` and `imagesmith matrix check` wall time against `python -c pass`."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import VENV_BIN, row, wall


def run() -> list[dict[str, object]]:
    python = sys.executable
    exe = str(VENV_BIN / "imagesmith")
    baseline = wall([python, "-c", "pass"])
    version = wall([exe, "--version"])
    check = wall(
        [
            exe,
            "matrix",
            "check",
            "--framework",
            "torch==2.4.1+cu124",
            "--driver",
            "535.104.05",
            "--gpu",
            "H100",
        ]
    )
    check_json = wall(
        [
            exe,
            "matrix",
            "check",
            "--framework",
            "jax==0.7.2+cuda13",
            "--driver",
            "580.82.07",
            "--gpu",
            "B200",
            "--json",
        ]
    )
    plan = wall([exe, "images", "plan"], runs=5)
    return [
        row("imagesmith --version", version, "python -c pass", baseline),
        row("matrix check (torch, text)", check, "python -c pass", baseline),
        row("matrix check (jax, --json)", check_json, "python -c pass", baseline),
        row("images plan (default policy)", plan, "python -c pass", baseline, "loads every data file"),
    ]
