"""The imagesmith release a team's repository is made for: ``imagesmith-version`` in ``imagesmith.yaml``.

One pinned release, as pre-commit's ``rev`` and cibuildwheel's pins are: the team's CI installs exactly it, the
curated images carry it (``io.imagesmith.version``), and the commands run in the repository, and the copier
extension rendering its projects, accept an installed imagesmith of the same release line (same major.minor, at
least the pin: ``~=X.Y.Z``). Anything else is version skew: stopped with one line naming both versions and the
command that fixes it. ``imagesmith upgrade`` moves the pin.
"""

from __future__ import annotations

from packaging.version import InvalidVersion, Version

from imagesmith.errors import DataError, VersionSkew

KEY = "imagesmith-version"


def parse_pin(text: object, *, where: str) -> Version:
    """The pinned release: a plain PEP 440 release (``0.2.1``), never a range."""
    value = str(text).strip()
    try:
        version = Version(value)
    except InvalidVersion:
        raise DataError(
            f"{KEY} must be an imagesmith release like 0.2.1, got {value!r}", where=where
        ) from None
    if version.local is not None or not value[:1].isdigit():
        raise DataError(f"{KEY} must be a plain release like 0.2.1, got {value!r}", where=where)
    return version


def line_of(version: Version) -> str:
    """The release line: ``major.minor``."""
    return f"{version.major}.{version.minor}"


def requirement(pin: Version) -> str:
    """The pip requirement a team's engineers install: the pin's release line, at least the pin."""
    return f"imagesmith>={pin},<{version_after_line(pin)}"


def version_after_line(pin: Version) -> str:
    return f"{pin.major}.{pin.minor + 1}"


def compatible(installed: Version, pin: Version) -> bool:
    return (installed.major, installed.minor) == (pin.major, pin.minor) and installed >= pin


def check_mapping(data: object, *, installed: str, where: str, repository: str) -> None:
    """``check`` for a policy document read as a mapping (the copier extension's reading of a template's policy)."""
    if isinstance(data, dict) and KEY in data:
        check(installed, parse_pin(data[KEY], where=where), where=where, repository=repository)


def check(installed_text: str, pin: Version, *, where: str, repository: str = "the team repository") -> None:
    """Raise ``VersionSkew`` unless the installed imagesmith may work on a repository pinned to ``pin``."""
    installed = Version(installed_text)
    if compatible(installed, pin):
        return
    install = f"pip install '{requirement(pin)}'"
    if installed > pin:
        hint = f"run `imagesmith upgrade` in {repository} to move it to {installed}, or {install}"
        relation = "newer than"
    else:
        hint = install
        relation = "older than"
    raise VersionSkew(
        f"installed imagesmith {installed} is {relation} the {pin} this repository is made for "
        f"({KEY}: {pin}); nothing done",
        where=where,
        hint=hint,
    )
