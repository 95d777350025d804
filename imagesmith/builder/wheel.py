"""Puts a fresh imagesmith wheel into every build context that installs it (``<context>/wheels/``).

The wheel is built from this checkout once per source state and cached, so a no-op rebuild does not
pay for ``pip wheel``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import imagesmith
from imagesmith.builder.inputs import _archive_digest
from imagesmith.errors import EnvironmentProblem, UsageError


def cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "imagesmith"


def source_root() -> Path | None:
    """The checkout holding this imagesmith (an editable install), or None for an installed wheel."""
    candidate = Path(imagesmith.__file__).resolve().parent.parent
    pyproject = candidate / "pyproject.toml"
    if pyproject.is_file() and 'name = "imagesmith"' in pyproject.read_text(encoding="utf-8"):
        return candidate
    return None


def _source_digest(root: Path) -> str:
    digest = hashlib.sha256()
    files = [root / "pyproject.toml", *sorted((root / "imagesmith").rglob("*"))]
    for path in files:
        hidden = any(part.startswith(".") for part in path.relative_to(root).parts)
        if path.is_file() and not hidden and "__pycache__" not in path.parts and path.suffix != ".pyc":
            digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:32]


def _setuptools_is_recent() -> bool:
    from importlib.metadata import PackageNotFoundError, version

    from packaging.version import InvalidVersion, Version

    try:
        major = Version(version("setuptools")).major
    except (PackageNotFoundError, InvalidVersion):
        return False
    return major >= 77  # pyproject.toml's build requirement; older ones cannot build this project


def build_wheel() -> Path:
    """A wheel of this checkout, from the cache when the sources did not change."""
    root = source_root()
    if root is None:
        raise UsageError(
            "this imagesmith is not a source checkout, so it cannot build its own wheel",
            where="--imagesmith-wheel",
            hint="pass --imagesmith-wheel FILE (pip wheel --no-deps imagesmith)",
        )
    target = cache_dir() / "wheels" / _source_digest(root)
    existing = sorted(target.glob("imagesmith-*.whl"))
    if existing:
        return existing[0]
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        # The build directory setuptools leaves behind would leak stale modules into the next wheel.
        env = {**os.environ, "SOURCE_DATE_EPOCH": "315532800"}
        command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", tmp]
        if _setuptools_is_recent():
            command.append("--no-build-isolation")  # saves fetching setuptools into a fresh environment
        with tempfile.TemporaryDirectory() as scratch:
            src = Path(scratch) / "src"
            shutil.copytree(
                root / "imagesmith", src / "imagesmith", ignore=shutil.ignore_patterns(".*", "__pycache__")
            )
            for name in ("pyproject.toml", "README.md", "LICENSE"):
                if (root / name).is_file():
                    shutil.copyfile(root / name, src / name)
            result = subprocess.run(
                [*command, str(src)], capture_output=True, text=True, env=env, check=False
            )
        if result.returncode != 0:
            tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
            raise EnvironmentProblem(f"pip wheel failed for {root}: {tail[0]}")
        built = sorted(Path(tmp).glob("imagesmith-*.whl"))
        if not built:
            raise EnvironmentProblem(f"pip wheel produced no imagesmith wheel for {root}")
        with contextlib.suppress(OSError):  # another run cached the same state first
            Path(tmp).rename(target)
    _prune(target.parent, keep=target)
    return sorted(target.glob("imagesmith-*.whl"))[0]


def _prune(wheels: Path, *, keep: Path, count: int = 4) -> None:
    """Drop all but the newest few cached wheels; every edit of the sources makes a new one."""
    others = sorted(
        (p for p in wheels.iterdir() if p.is_dir() and p != keep and not p.name.startswith("tmp")),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for stale in others[count - 1 :]:
        shutil.rmtree(stale, ignore_errors=True)


def place(wheel: Path, context: Path) -> Path:
    """Copy ``wheel`` into ``context/wheels/``, replacing other imagesmith wheels; keep an identical one."""
    if not wheel.is_file():
        raise UsageError("no such wheel file", where=str(wheel))
    wheels = context / "wheels"
    wheels.mkdir(exist_ok=True)
    destination = wheels / wheel.name
    for old in wheels.glob("imagesmith-*.whl"):
        if old != destination:
            old.unlink()
    if not destination.exists() or _archive_digest(destination) != _archive_digest(wheel):
        shutil.copyfile(wheel, destination)
    return destination
