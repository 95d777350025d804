"""The team's side, as a team lives it: imagesmith wheels built from this checkout (a release and the next
one), installed into fresh virtual environments outside the checkout, and the rendered CI workflow run step by
step on a clean clone (GitHub's runner semantics: bash -e, $GITHUB_ENV, secrets, `needs:` order)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")
NEXT = "0.2.0"
# What the next release changes in the templates, so that upgrades have something to carry.
NEXT_DOCKERIGNORE_LINE = "# .dockerignore of the imagesmith 0.2.0 templates\n"
NEXT_GITIGNORE_LINE = "/.imagesmith/cache/\n"


def current_version() -> str:
    match = re.search(r'^version = "([^"]+)"', (REPO / "pyproject.toml").read_text(), re.MULTILINE)
    assert match
    return match.group(1)


def _source_copy(dst: Path) -> Path:
    dst.mkdir(parents=True)
    shutil.copytree(
        REPO / "imagesmith", dst / "imagesmith", ignore=shutil.ignore_patterns("__pycache__", ".*cache")
    )
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, dst / name)
    return dst


def _wheel(src: Path, out: Path) -> Path:
    """`python -m build`: the sdist, then the wheel built from the sdist (so both carry everything)."""
    done = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(src)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "SOURCE_DATE_EPOCH": "315532800"},
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return next(out.glob(f"imagesmith-{version_in(src)}-*.whl"))


def version_in(src: Path) -> str:
    match = re.search(r'^version = "([^"]+)"', (src / "pyproject.toml").read_text(), re.MULTILINE)
    assert match
    return match.group(1)


def build_wheels(work: Path) -> dict[str, Path]:
    """This checkout's wheel (its own version) and the next release's: the same code, version NEXT, and a
    small change in each of the team-repository template and the project templates."""
    wheelhouse = work / "wheelhouse"
    wheelhouse.mkdir(parents=True)
    now = _source_copy(work / "src-now")
    nxt = _source_copy(work / "src-next")
    old = version_in(now)
    for path in (nxt / "pyproject.toml", nxt / "imagesmith" / "__init__.py"):
        text = path.read_text()
        assert f'"{old}"' in text
        path.write_text(text.replace(f'"{old}"', f'"{NEXT}"', 1))
    repo = nxt / "imagesmith" / "team" / "template" / "repo"
    with (repo / "templates" / "base" / "dockerignore.jinja").open("a") as handle:
        handle.write(NEXT_DOCKERIGNORE_LINE)
    with (repo / ".gitignore.tmpl").open("a") as handle:
        handle.write(NEXT_GITIGNORE_LINE)
    return {old: _wheel(now, wheelhouse), NEXT: _wheel(nxt, wheelhouse)}


@dataclass(frozen=True, kw_only=True)
class Venv:
    root: Path
    env: dict[str, str]  # HOME of this "machine", the package index (PyPI plus the wheelhouse)

    @property
    def bin(self) -> Path:
        return self.root / "bin"

    def run(
        self, *args: str, cwd: Path, timeout: int = 1800, **extra: str
    ) -> subprocess.CompletedProcess[str]:
        """A command of this environment, as its user types it (`imagesmith ...`, `copier ...`)."""
        env = {**self.env, **extra, "PATH": f"{self.bin}:{os.environ['PATH']}", "VIRTUAL_ENV": str(self.root)}
        return subprocess.run(
            [str(self.bin / args[0]), *args[1:]], cwd=cwd, capture_output=True, text=True, timeout=timeout,
            env=env, check=False,
        )  # fmt: skip


def machine_env(home: Path, wheelhouse: Path) -> dict[str, str]:
    """A fresh user's environment: its own HOME (no imagesmith cache), the index the team installs from."""
    home.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "XDG_CACHE_HOME")}
    links = " ".join(p for p in (os.environ.get("PIP_FIND_LINKS", ""), str(wheelhouse)) if p)
    return {**env, "HOME": str(home), "PIP_FIND_LINKS": links}


def make_venv(root: Path, requirement: str, env: dict[str, str]) -> Venv:
    """`python -m venv` + `pip install <requirement>`, away from the checkout."""
    subprocess.run([sys.executable, "-m", "venv", str(root)], check=True, capture_output=True)
    done = subprocess.run(
        [str(root / "bin" / "python"), "-m", "pip", "install", "--quiet", requirement],
        capture_output=True, text=True, env=env, cwd=root, check=False, timeout=1200,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return Venv(root=root, env=env)


# ---- the rendered workflow, run as GitHub's runner runs it ------------------------------------------------
PUSH_EXPR = re.compile(r"\$\{\{ github\.event_name != 'pull_request' && '([^']*)' \|\| '([^']*)' \}\}")
SECRET_EXPR = re.compile(r"\$\{\{ secrets\.([A-Z_]+) \}\}")


def evaluate(text: str, secrets: dict[str, str]) -> str:
    """The expressions the rendered workflows use, for a push event; any other fails the test."""
    text = PUSH_EXPR.sub(lambda m: m.group(1), text)
    text = SECRET_EXPR.sub(lambda m: secrets.get(m.group(1), ""), text)
    assert "${{" not in text, f"an expression this runner does not know: {text}"
    return text


def jobs_in_order(workflow: dict[str, Any]) -> list[str]:
    jobs = workflow["jobs"]
    done: list[str] = []
    while len(done) < len(jobs):
        ready = [j for j in jobs if j not in done and all(n in done for n in jobs[j].get("needs", []))]
        assert ready, "a needs: cycle"
        done.extend(ready[:1])
    return done


@dataclass(frozen=True, kw_only=True)
class StepRun:
    name: str
    returncode: int
    output: str


def run_job(
    job: dict[str, Any], *, clone_from: Path, work: Path, secrets: dict[str, str], base_env: dict[str, str]
) -> list[StepRun]:
    """Every step of ``job`` on a fresh runner: a clean clone (actions/checkout), a fresh venv
    (actions/setup-python), `run:` steps under `bash -e` with $GITHUB_ENV honoured; stops at a failing step."""
    work.mkdir(parents=True)
    checkout = work / "checkout"
    temp = work / "runner-temp"
    temp.mkdir()
    github_env = work / "github_env"
    github_env.touch()
    env = {**base_env, "RUNNER_TEMP": str(temp), "GITHUB_ENV": str(github_env), "CI": "true"}
    results: list[StepRun] = []
    for step in job["steps"]:
        name = step.get("name") or step.get("uses") or "step"
        condition = step.get("if")
        if condition not in (None, "always()", "github.event_name != 'pull_request'"):
            raise AssertionError(f"a step condition this runner does not know: {condition}")
        uses = step.get("uses")
        if uses == "actions/checkout@v4":
            done = subprocess.run(
                ["git", "clone", "-q", str(clone_from), str(checkout)],
                capture_output=True,
                text=True,
                check=False,
            )
            results.append(StepRun(name=name, returncode=done.returncode, output=done.stderr))
        elif uses == "actions/setup-python@v5":
            venv = work / "python"
            done = subprocess.run(
                [sys.executable, "-m", "venv", str(venv)], capture_output=True, text=True, check=False
            )
            env["PATH"] = f"{venv / 'bin'}:{env['PATH']}"
            env["VIRTUAL_ENV"] = str(venv)
            results.append(StepRun(name=name, returncode=done.returncode, output=done.stderr))
        elif uses == "actions/upload-artifact@v4":
            path = checkout / evaluate(step["with"]["path"], secrets)
            results.append(StepRun(name=name, returncode=0 if path.exists() else 1, output=str(path)))
        else:
            assert uses is None, f"an action this runner does not know: {uses}"
            for line in github_env.read_text().splitlines():
                key, sep, value = line.partition("=")
                if sep:
                    env[key] = value
            step_env = {k: evaluate(str(v), secrets) for k, v in step.get("env", {}).items()}
            done = subprocess.run(
                ["bash", "-e", "-o", "pipefail", "-c", evaluate(step["run"], secrets)],
                cwd=checkout, env={**env, **step_env}, capture_output=True, text=True, check=False, timeout=3000,
            )  # fmt: skip
            results.append(StepRun(name=name, returncode=done.returncode, output=done.stdout + done.stderr))
        if results[-1].returncode != 0:
            break
    return results
