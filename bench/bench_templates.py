"""Wall time of `copier copy` and `copier update` (v1 -> v2) for each project type.

Baseline: the same copier operation on a one-file template with no extension, i.e. copier's own floor
(git clone of the template, questionnaire, render, answers file; for update the 3 renders and the diff).
The ratio says how much the imagesmith templates (three dozen files, the curated-image plan and the
instance picker behind the questions) cost on top of copier itself. Median of several runs.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from imagesmith.team.assets import copy_project_templates

REPO = Path(__file__).resolve().parents[1]
RUNS = 5
GIT_ENV = {
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
}


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, env={**os.environ, **GIT_ENV})


def _commit(cwd: Path, message: str) -> None:
    _git(cwd, "add", "-A")
    _git(cwd, "commit", "-q", "--no-verify", "-m", message)


def _imagesmith_template(root: Path) -> Path:
    tpl = root / "imagesmith-templates"
    tpl.mkdir()
    copy_project_templates(tpl)
    _git(tpl, "init", "-q", "-b", "main")
    _commit(tpl, "v1")
    _git(tpl, "tag", "v1")
    dockerfile = tpl / "templates/base/Dockerfile.jinja"
    dockerfile.write_text(dockerfile.read_text().replace("WORKDIR /app\n", "WORKDIR /app\nLABEL bench=v2\n"))
    _commit(tpl, "v2")
    _git(tpl, "tag", "v2")
    return tpl


def _minimal_template(root: Path) -> Path:
    tpl = root / "minimal"
    tpl.mkdir()
    (tpl / "copier.yml").write_text("name:\n  type: str\n  default: demo\n")
    (tpl / "README.md.jinja").write_text("# {{ name }}\n")
    (tpl / "{{_copier_conf.answers_file}}.jinja").write_text("{{ _copier_answers|to_nice_yaml }}")
    _git(tpl, "init", "-q", "-b", "main")
    _commit(tpl, "v1")
    _git(tpl, "tag", "v1")
    (tpl / "README.md.jinja").write_text("# {{ name }}\n\nv2\n")
    _commit(tpl, "v2")
    _git(tpl, "tag", "v2")
    return tpl


def _copier(*args: str, cwd: Path) -> None:
    exe = Path(sys.executable).parent / "copier"
    subprocess.run([str(exe), *args], cwd=cwd, check=True, capture_output=True, env={**os.environ, **GIT_ENV})


def _median(action: Callable[[int], object]) -> float:
    times = []
    for i in range(RUNS):
        start = time.perf_counter()
        action(i)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run() -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-templates-") as tmp:
        root = Path(tmp)
        ours, minimal = _imagesmith_template(root), _minimal_template(root)

        def copy_ours(kind: str, i: int, ref: str = "v1") -> Path:
            dst = root / f"{kind}-{ref}-{i}"
            _copier(
                "copy",
                "--trust",
                "--defaults",
                "--quiet",
                "-r",
                ref,
                "-d",
                f"project_type={kind}",
                str(ours),
                str(dst),
                cwd=root,
            )
            return dst

        def copy_minimal(i: int) -> Path:
            dst = root / f"min-{i}"
            _copier("copy", "--defaults", "--quiet", "-r", "v1", str(minimal), str(dst), cwd=root)
            return dst

        def ready_for_update(make: Callable[[], Path]) -> Path:
            dst = make()
            _git(dst, "init", "-q", "-b", "main")
            _commit(dst, "start")
            return dst

        baseline_copy = _median(copy_minimal)
        min_projects = [ready_for_update(partial(copy_minimal, 100 + i)) for i in range(RUNS)]

        def update_in(projects: list[Path], *extra: str) -> Callable[[int], None]:
            def action(i: int) -> None:
                _copier("update", *extra, "--defaults", "--quiet", "--conflict", "inline", cwd=projects[i])

            return action

        baseline_update = _median(update_in(min_projects))
        for kind in ("library", "batch", "service"):
            copy_s = _median(partial(copy_ours, kind))
            projects = [ready_for_update(partial(copy_ours, kind, 100 + i)) for i in range(RUNS)]
            update_s = _median(update_in(projects, "--trust"))
            results.append(
                {
                    "name": f"templates: copier copy ({kind})",
                    "imagesmith_s": copy_s,
                    "baseline": "copier copy of a one-file template (copier's floor)",
                    "baseline_s": baseline_copy,
                    "ratio": copy_s / baseline_copy,
                    "note": f"CLI wall time, median of {RUNS}; includes the picker and the curated-image plan",
                }
            )
            results.append(
                {
                    "name": f"templates: copier update v1->v2 ({kind})",
                    "imagesmith_s": update_s,
                    "baseline": "copier update v1->v2 of a one-file template (copier's floor)",
                    "baseline_s": baseline_update,
                    "ratio": update_s / baseline_update,
                    "note": f"CLI wall time, median of {RUNS}; copier renders old, new and in-place copies",
                }
            )
    return results


if __name__ == "__main__":
    for row in run():
        print(
            f"{row['name']:<45} {row['imagesmith_s']:7.2f}s  baseline {row['baseline_s']:6.2f}s  x{row['ratio']:.2f}"
        )
