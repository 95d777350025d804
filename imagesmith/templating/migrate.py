"""Version-gated structural migrations for ``copier.yml`` ``_migrations``.

Run as ``{{ _copier_python }} -m imagesmith.templating.migrate rename OLD NEW`` in the *before* stage:
a ``git mv`` lands before copier snapshots the project, so copier sees the renamed file as present in
both trees and 3-way merges it, and the user's edits follow the file instead of being dropped.
Idempotent: nothing happens when OLD is gone or NEW already exists.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

USAGE = "usage: python -m imagesmith.templating.migrate rename OLD NEW"


def rename(project: Path, old: str, new: str) -> bool:
    """``git mv old new`` inside ``project``; returns whether anything moved."""
    source, target = project / old, project / new
    if not source.exists() or target.exists():
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    tracked = subprocess.run(
        ["git", "ls-files", "--error-unmatch", old], cwd=project, capture_output=True, check=False
    )
    if tracked.returncode == 0:
        subprocess.run(["git", "mv", old, new], cwd=project, check=True)
    else:
        source.rename(target)
    return True


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[0] != "rename":
        print(f"imagesmith migrate: {USAGE}", file=sys.stderr)
        return 2
    moved = rename(Path.cwd(), argv[1], argv[2])
    print(f"imagesmith migrate: {'renamed' if moved else 'nothing to rename'} {argv[1]} -> {argv[2]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
