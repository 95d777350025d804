"""The team-repository template's versions as a git repository, so that copier can update a team's repository.

copier updates from git tags: it renders the template version a repository was made from (``_commit`` in its
answers file) and the new one, and merges the team's edits across. imagesmith ships one version, the one in its
wheel, so it keeps every version it has met in ``~/.cache/imagesmith/team-template`` (tag ``v<imagesmith
version>``); the answers file records that path with its ``~``, so it names the same thing on every engineer's
machine. A version this machine never met is taken from that release's wheel on the package index.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

from imagesmith.errors import EnvironmentProblem
from imagesmith.team.assets import TEMPLATE_ROOT

# Recorded in the team's answers file as written here (copier expands the ~ when it clones).
SRC_PATH = "~/.cache/imagesmith/team-template"
_GIT_ENV = {
    "GIT_AUTHOR_NAME": "imagesmith",
    "GIT_AUTHOR_EMAIL": "imagesmith@localhost",
    "GIT_COMMITTER_NAME": "imagesmith",
    "GIT_COMMITTER_EMAIL": "imagesmith@localhost",
    "GIT_CONFIG_NOSYSTEM": "1",
}
WHEEL_PREFIX = "imagesmith/team/template/"


def last_line(text: str) -> str:
    """The last non-empty line of a tool's message: what a one-line error quotes."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def repo_path() -> Path:
    return Path(SRC_PATH).expanduser()


def tag(version: str) -> str:
    return f"v{version}"


def _git(repo: Path, *args: str) -> str:
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=repo,
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, **_GIT_ENV},
        )
    except FileNotFoundError:
        raise EnvironmentProblem("git is not installed; imagesmith init and upgrade need it") from None
    if done.returncode != 0:
        raise EnvironmentProblem(
            f"git {' '.join(args)} failed: {last_line(done.stderr or done.stdout) or 'no output'}",
            where=str(repo),
        )
    return done.stdout.strip()


def _ensure_repo() -> Path:
    repo = repo_path()
    if not (repo / ".git").is_dir():
        repo.mkdir(parents=True, exist_ok=True)
        _git(repo, "init", "-q", "-b", "main")
    return repo


def has_version(version: str) -> bool:
    repo = repo_path()
    if not (repo / ".git").is_dir():
        return False
    done = subprocess.run(
        ["git", "rev-parse", "-q", "--verify", f"refs/tags/{tag(version)}"],
        cwd=repo,
        capture_output=True,
        check=False,
    )
    return done.returncode == 0


def add_version(version: str, source: Path) -> str:
    """Commit the template tree ``source`` as ``v<version>`` (moving the tag when its content differs); the tag."""
    repo = _ensure_repo()
    for child in repo.iterdir():
        if child.name != ".git":
            shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
    shutil.copytree(source, repo, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    _git(repo, "add", "-A")
    name = tag(version)
    tree = _git(repo, "write-tree")
    existing = subprocess.run(
        ["git", "rev-parse", "-q", "--verify", f"refs/tags/{name}^{{tree}}"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    if existing != tree:
        has_head = (
            subprocess.run(
                ["git", "rev-parse", "-q", "--verify", "HEAD"], cwd=repo, capture_output=True
            ).returncode
            == 0
        )
        if not has_head or _git(repo, "rev-parse", "HEAD^{tree}") != tree:
            _git(
                repo,
                "commit",
                "-q",
                "--allow-empty",
                "-m",
                f"imagesmith {version}: the team-repository template",
            )
        _git(repo, "tag", "-f", name, "HEAD")
    _git(repo, "checkout", "-q", "-f", name)  # a clean work tree at the tag: copier copies a dirty one as is
    return name


def add_current(version: str) -> str:
    """The template of this imagesmith, as ``v<version>``."""
    return add_version(version, TEMPLATE_ROOT)


def add_from_release(version: str) -> str:
    """The template of another imagesmith release, from its wheel on the package index (``pip download``)."""
    from imagesmith.builder.wheel import download_release

    wheel = download_release(version)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "template"
        with zipfile.ZipFile(wheel) as archive:
            members = [m for m in archive.namelist() if m.startswith(WHEEL_PREFIX) and not m.endswith("/")]
            if not members:
                raise EnvironmentProblem(
                    f"the wheel of imagesmith {version} carries no team-repository template", where=str(wheel)
                )
            for member in members:
                target = root / member[len(WHEEL_PREFIX) :]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(archive.read(member))
        return add_version(version, root)


def changed_project_files(old: str, new: str) -> list[str]:
    """The project-template files (``copier.yml``, ``templates/``) that differ between two versions."""
    out = _git(
        repo_path(), "diff", "--name-status", tag(old), tag(new), "--", "repo/copier.yml", "repo/templates"
    )
    return [line.replace("\trepo/", " ", 1) for line in out.splitlines() if line.strip()]


def _copier(what: str, where: Path, call: Callable[[], object]) -> None:
    try:
        call()
    except Exception as exc:  # copier's own errors: one line, never its traceback
        raise EnvironmentProblem(
            f"copier could not {what}: {last_line(str(exc)) or type(exc).__name__}", where=str(where)
        ) from None


def copy_into(directory: Path, *, version: str, data: dict[str, str]) -> None:
    """``copier copy`` of the team-repository template at ``v<version>`` into ``directory``."""
    import copier

    _copier(
        "copy the team-repository template",
        directory,
        lambda: copier.run_copy(
            SRC_PATH, directory, data=data, vcs_ref=tag(version), defaults=True, overwrite=False, quiet=True,
            unsafe=False,
        ),
    )  # fmt: skip


def update(root: Path, *, version: str, answers_file: str) -> None:
    """``copier update`` of a team's repository to the template of ``v<version>``: edits kept, conflicts inline."""
    import copier

    _copier(
        "update the team's files",
        root,
        lambda: copier.run_update(
            root, answers_file=answers_file, vcs_ref=tag(version), defaults=True, overwrite=True,
            conflict="inline", quiet=True, unsafe=False, skip_answered=True,
        ),
    )  # fmt: skip
