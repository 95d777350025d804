"""A team's way in and its upgrades, from the wheel (no checkout on sys.path), side by side with copier alone.

Rows:
* ``pip install imagesmith`` (the wheel and its dependencies from the index) into a fresh venv, cold (empty pip
  cache) and warm, against ``pip install copier`` alone (what any copier-based template asks of a user);
* ``imagesmith init`` (team repository, policy, templates, rendered images and CI) against ``copier copy`` of the
  same team-repository template from its git versions (copier's own share of the work);
* ``imagesmith upgrade --check`` on an up-to-date repository and on one a release behind, against
  ``copier update --pretend`` on the same repository (copier alone, which knows nothing of images).

The commands a team types from nothing to its first project image are counted in the notes. Run:
``.venv/bin/python bench/run.py team`` (builds two wheels, downloads the dependencies once; ~3 minutes).
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.common import row  # noqa: E402
from tests.team import kit  # noqa: E402

RUNS = 5
# pip install, init, lock, render, git init/add/commit/tag, copier copy, docker build: the first project image.
COMMANDS_TO_FIRST_IMAGE = 9


def _timed(args: list[str], *, cwd: Path, env: dict[str, str], ok: tuple[int, ...] = (0,)) -> float:
    start = time.perf_counter()
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode not in ok:
        raise RuntimeError(f"{' '.join(args)} exited {done.returncode}: {done.stderr[-500:]}")
    return elapsed


def _install(work: Path, requirement: str, env: dict[str, str], *, cold: bool) -> float:
    times = []
    for i in range(3):
        venv = work / f"venv-{requirement.split('=')[0]}-{cold}-{i}"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        run_env = dict(env)
        if cold:
            run_env["PIP_NO_CACHE_DIR"] = "1"
        times.append(_timed([str(venv / "bin" / "pip"), "install", "-q", requirement], cwd=work, env=run_env))
        shutil.rmtree(venv)
    return statistics.median(times)


def run() -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        wheels = kit.build_wheels(work / "wheels")
        version = kit.current_version()
        env = kit.machine_env(work / "home", next(iter(wheels.values())).parent)
        # Install: cold and warm, against copier alone; only PyPI and the wheelhouse (this machine's local
        # mirror of many wheels would make "cold" warm).
        index_only = {
            **env,
            "PIP_FIND_LINKS": str(next(iter(wheels.values())).parent),
            "PIP_CACHE_DIR": str(work / "pip-cache"),
        }
        for cold in (True, False):
            ours = _install(work, f"imagesmith=={version}", index_only, cold=cold)
            theirs = _install(work, "copier", index_only, cold=cold)
            label = "cold pip cache" if cold else "warm pip cache"
            rows.append(
                row(f"pip install imagesmith into a fresh venv ({label})", ours, "pip install copier", theirs)
            )
        v1 = kit.make_venv(work / "v1", f"imagesmith=={version}", env)
        v1_env = {**env, "PATH": f"{v1.bin}:{os.environ['PATH']}"}
        flags = ["--framework", "torch~=2.13.0"]
        inits, copies = [], []
        for i in range(RUNS):
            inits.append(
                _timed([str(v1.bin / "imagesmith"), "init", f"team{i}", *flags], cwd=work, env=v1_env)
            )
            copies.append(_timed(
                [str(v1.bin / "copier"), "copy", "--defaults", "--vcs-ref", f"v{version}", "~/.cache/imagesmith/team-template", f"copy{i}"],
                cwd=work, env=v1_env,
            ))  # fmt: skip
        rows.append(row(
            "imagesmith init (policy, templates, rendered images and CI)", statistics.median(inits),
            "copier copy of the same template", statistics.median(copies),
            f"{COMMANDS_TO_FIRST_IMAGE} commands from nothing to the first project image (docs/team.md)",
        ))  # fmt: skip
        team = work / "team0"
        for args in (
            ["init", "-q", "-b", "main"],
            ["add", "-A"],
            ["-c", "user.name=b", "-c", "user.email=b@x", "commit", "-qm", "init"],
        ):
            subprocess.run(["git", *args], cwd=team, check=True)
        check = [str(v1.bin / "imagesmith"), "upgrade", "--check"]
        pretend = [
            str(v1.bin / "copier"),
            "update",
            "--pretend",
            "--defaults",
            "--answers-file",
            ".imagesmith/team-answers.yml",
        ]
        ours = statistics.median(_timed(check, cwd=team, env=v1_env) for _ in range(RUNS))
        theirs = statistics.median(_timed(pretend, cwd=team, env=v1_env) for _ in range(RUNS))
        rows.append(row("imagesmith upgrade --check, up to date", ours, "copier update --pretend", theirs))
        v2 = kit.make_venv(work / "v2", f"imagesmith=={kit.NEXT}", env)
        v2_env = {**env, "PATH": f"{v2.bin}:{os.environ['PATH']}"}
        check2 = [str(v2.bin / "imagesmith"), "upgrade", "--check"]
        pretend2 = [str(v2.bin / "copier"), *pretend[1:], "--vcs-ref", f"v{kit.NEXT}"]
        ours = statistics.median(_timed(check2, cwd=team, env=v2_env, ok=(1,)) for _ in range(RUNS))
        theirs = statistics.median(_timed(pretend2, cwd=team, env=v2_env) for _ in range(RUNS))
        rows.append(row(
            "imagesmith upgrade --check, one release behind (re-plan + template diff)", ours,
            "copier update --pretend", theirs, "ours also re-plans the images and compares tags and coverage",
        ))  # fmt: skip
    return rows


if __name__ == "__main__":
    for r in run():
        print(r)
