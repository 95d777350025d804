"""Inside a curated image: write the constraints file, and run pip so that a conflict with the image's
pins ends in one line naming the package, the pin and the requirement.

    python -m imagesmith.guard freeze [PATH]     # the installed set -> /opt/imagesmith/constraints.txt
    python -m imagesmith.guard pip install .      # pip, unchanged, plus the one-line verdict on a conflict

Standard library only (the images carry imagesmith without its CLI dependencies).
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from importlib import metadata
from pathlib import Path

from imagesmith.contract import pins

USAGE = "usage: python -m imagesmith.guard freeze [PATH] | pip ARGS..."


def installed() -> tuple[pins.Pin, ...]:
    """The distributions of this interpreter's environment (the image's venv), not of PYTHONPATH extras."""
    site = [sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    found: dict[str, pins.Pin] = {}
    for dist in metadata.distributions(path=list(dict.fromkeys(site))):
        name = dist.metadata["Name"]
        if name:
            pin = pins.Pin(name=name, version=dist.version)
            found.setdefault(pin.key, pin)
    return tuple(found.values())


def freeze(path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(pins.constraints_text(installed(), source=f"{sys.prefix}"), encoding="utf-8")
    return 0


def run_pip(args: list[str]) -> int:
    """pip with its output passed through as it comes; on failure, one line per pinned package in conflict."""
    process = subprocess.Popen(
        [sys.executable, "-m", "pip", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert process.stdout is not None
    seen: list[str] = []
    for line in process.stdout:
        sys.stdout.write(line)
        sys.stdout.flush()
        seen.append(line)
    code = process.wait()
    if code != 0:
        constraints = os.environ.get("PIP_CONSTRAINT") or pins.CONSTRAINTS_PATH
        for conflict in pins.conflicts("".join(seen)):
            print(conflict.one_line(constraints=constraints), file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["freeze"] and len(args) <= 2:
        return freeze(Path(args[1] if len(args) == 2 else pins.CONSTRAINTS_PATH))
    if args[:1] == ["pip"] and len(args) > 1:
        return run_pip(args[1:])
    print(USAGE, file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
