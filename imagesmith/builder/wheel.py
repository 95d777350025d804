"""Puts the imagesmith wheel into every build context that installs it (``<context>/wheels/``).

Which wheel: for a policy that pins a release (``imagesmith-version``), exactly that release: downloaded from
the package index (pip's own configuration: ``PIP_INDEX_URL``, ``PIP_FIND_LINKS``), or built from a source
checkout of that very release, which must then have no uncommitted changes to push. For a policy that pins
none, a wheel of the imagesmith that runs the build, built from its checkout once per source state and cached,
so a no-op rebuild does not pay for ``pip wheel``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
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


def build_wheel(root: Path | None = None) -> Path:
    """A wheel of the checkout at ``root`` (default: this imagesmith's), cached while its sources stay the same."""
    root = root or source_root()
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


def uncommitted_changes(root: Path) -> list[str]:
    """Files of the package (and its build configuration) that differ from the checkout's last commit."""
    done = subprocess.run(
        ["git", "-C", str(root), "status", "--porcelain", "--", "imagesmith", "pyproject.toml"],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        return []  # not a git checkout (an unpacked sdist): nothing to compare with
    return [line[3:] for line in done.stdout.splitlines() if line.strip()]


def download_release(version: str) -> Path:
    """The released wheel of imagesmith ``version`` from the package index, cached per version."""
    target = cache_dir() / "wheels" / f"release-{version}"
    existing = sorted(target.glob(f"imagesmith-{version}-*.whl"))
    if existing:
        return existing[0]
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet"]
        result = subprocess.run(
            [*command, "-d", tmp, f"imagesmith=={version}"], capture_output=True, text=True, check=False
        )
        found = sorted(Path(tmp).glob(f"imagesmith-{version}-*.whl"))
        if result.returncode != 0 or not found:
            tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no wheel"]
            raise EnvironmentProblem(
                f"cannot download imagesmith {version} from the package index: {tail[0]}",
                where="imagesmith-version",
                hint="set PIP_INDEX_URL (or PIP_FIND_LINKS) to where the release is, or pass --imagesmith-wheel",
            )
        with contextlib.suppress(OSError):
            Path(tmp).rename(target)
    return sorted(target.glob(f"imagesmith-{version}-*.whl"))[0]


def wheel_version(path: Path) -> str:
    """The version in a wheel's file name (``imagesmith-0.2.0-py3-none-any.whl``)."""
    parts = path.name.split("-")
    return parts[1] if len(parts) >= 5 and path.suffix == ".whl" else ""


def checkout_version(root: Path) -> str | None:
    """The version a source checkout declares (``version = "..."`` in its pyproject.toml)."""
    import re

    try:
        text = (root / "pyproject.toml").read_text(encoding="utf-8")
    except OSError:
        return None
    match = re.search(r'^version\s*=\s*"([^"]+)"', text, re.MULTILINE)
    return match.group(1) if match else None


def for_release(
    version: str,
    *,
    push: bool,
    given: Path | None,
    warn: Callable[[str], None],
    checkout: Path | None = None,
) -> Path:
    """The wheel of the pinned release ``version`` (see the module's docstring); refuses what is not it.

    ``checkout``: the source checkout this imagesmith runs from (default: found from the running package;
    None when installed from a wheel)."""
    if given is not None:
        if wheel_version(given) != version:
            raise UsageError(
                f"the wheel is imagesmith {wheel_version(given) or '(unknown version)'}, the policy pins {version}",
                where=f"--imagesmith-wheel {given}",
            )
        return given
    root = checkout or source_root()
    if root is None or checkout_version(root) != version:
        return download_release(version)
    changed = uncommitted_changes(root)
    if changed:
        shown = ", ".join(changed[:3]) + (f" and {len(changed) - 3} more" if len(changed) > 3 else "")
        if push:
            raise UsageError(
                f"imagesmith runs from a checkout with uncommitted changes ({shown}): its wheel is not release "
                f"{version}, and the images would carry it under release tags; nothing built or pushed",
                where=str(root),
                hint="commit the changes (or build without --push)",
            )
        warn(f"imagesmith: warning: building with uncommitted tool changes in {root} ({shown})")
    return build_wheel(root)
