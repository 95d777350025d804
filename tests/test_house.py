"""The house rules of docs/../design/layout.md that a machine can check: the ground packages import
nothing above them, and versions are parsed by the one vocabulary (imagesmith/matrix/versions.py)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "imagesmith"

# What each ground package may import from imagesmith (its own modules always).
GROUND = {
    "contract": {"imagesmith.errors"},
    "matrix": {"imagesmith.errors", "imagesmith.contract", "imagesmith.parsecache"},
}

# The dotted strings that are not NVIDIA or Python versions and keep their own reader, each with why.
SPLIT_ON_DOTS_ALLOWED = {
    "doctor/loader/elf.py",  # glibc's symbol-version tags (GLIBC_2.34): the one reader of glibc's own scheme
    "images/lock.py",  # the policy's glibc (2.36) turned into a manylinux platform tag
    "harvest/pypi.py",  # a wheel file name's platform tags (manylinux_2_28_x86_64.manylinux2014_x86_64)
    "matrix/versions.py",  # the vocabulary itself
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from imagesmith import parsecache` imports imagesmith.parsecache: judge the full name.
            out.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in out if name.startswith("imagesmith")}


@pytest.mark.parametrize("package", sorted(GROUND))
def test_ground_packages_import_nothing_above_them(package: str) -> None:
    allowed = GROUND[package] | {f"imagesmith.{package}"}
    wrong = [
        f"{path.relative_to(PACKAGE)} imports {name}"
        for path in sorted((PACKAGE / package).rglob("*.py"))
        for name in sorted(_imports(path))
        if not any(name == a or name.startswith(a + ".") for a in allowed)
    ]
    assert not wrong, "\n".join(wrong)


def test_no_hand_written_version_parsers() -> None:
    """``x.split(".")`` or ``x.partition(".")`` on a version is what NvVersion/Capability/packaging are for."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel in SPLIT_ON_DOTS_ALLOWED:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("split", "rsplit", "partition", "rpartition")
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and node.args[0].value == "."
            ):
                found.append(f"{rel}:{node.lineno}")
    assert not found, "parse versions with imagesmith.matrix.versions or packaging: " + ", ".join(found)
