"""Pins: each curated image's lock file, the constraints file every image ships, and pip's conflict report
read back as one line per package.

The one home of three formats that cross package boundaries: ``base_images/<image>/requirements.lock``
(written by ``imagesmith images lock``, read by ``images render``, the templates and the build), the image's
``/opt/imagesmith/constraints.txt`` (written inside the image by ``python -m imagesmith.guard freeze``, read by
pip through ``PIP_CONSTRAINT`` and by the templates), and pip's ``ResolutionImpossible`` text. Standard
library only: the image runs the guard with nothing but the doctor's dependencies installed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from imagesmith.errors import DataError

LOCK_NAME = "requirements.lock"
SBOM_TOOL_LOCK_NAME = "sbom-tool.lock"
LOCKS_DIR = "/opt/imagesmith/locks"
CONSTRAINTS_PATH = "/opt/imagesmith/constraints.txt"
# Build tools are never pinned: pip hands PIP_CONSTRAINT to the isolated environments it builds sdists
# and projects in, and a pinned setuptools there breaks every project whose build-system needs a newer one.
UNPINNED = frozenset({"pip", "setuptools", "wheel"})

_HEADER = "# imagesmith lock for "
_FIELDS = ("requirements", "parent", "python", "platform", "index", "extra-index", "resolver", "inputs")


def normalize(name: str) -> str:
    """PEP 503 name normalisation: ``Foo_Bar.baz`` and ``foo-bar-baz`` are one project."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True, kw_only=True)
class Pin:
    """One exact version, with the artifact hashes pip must see (empty in a constraints file)."""

    name: str
    version: str
    hashes: tuple[str, ...] = ()
    via: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return normalize(self.name)

    def __str__(self) -> str:
        return f"{self.name}=={self.version}"


@dataclass(frozen=True, kw_only=True)
class Lock:
    """What one image installs on top of its parent, resolved and hashed; ``inputs`` fingerprints the request
    (requirements, Python, platform, index, the parent's pins), so a changed policy shows as a stale lock."""

    image: str
    requirements: tuple[str, ...]
    parent: str | None
    python: str
    platform: str
    index: str
    extra_index: str | None
    resolver: str
    inputs: str
    pins: tuple[Pin, ...]

    @property
    def digest(self) -> str:
        """Fingerprint of the pins alone (names, versions, hashes): what the image's lock label carries."""
        return pins_digest(self.pins)

    def by_key(self) -> dict[str, Pin]:
        return {p.key: p for p in self.pins}

    def dumps(self) -> str:
        values = {
            "requirements": " ".join(self.requirements),
            "parent": self.parent or "-",
            "python": self.python,
            "platform": self.platform,
            "index": self.index,
            "extra-index": self.extra_index or "-",
            "resolver": self.resolver,
            "inputs": self.inputs,
        }
        lines = [
            f"{_HEADER}{self.image}: do not edit; `imagesmith images lock` writes it",
            "# (only what this image adds to its parent; builds install it with --require-hashes --no-deps)",
        ]
        lines += [f"# {key}: {values[key]}" for key in _FIELDS]
        for pin in sorted(self.pins, key=lambda p: p.key):
            lines.append(f"{pin.name}=={pin.version}" + (" \\" if pin.hashes else ""))
            for i, digest in enumerate(pin.hashes):
                lines.append(f"    --hash={digest}" + (" \\" if i < len(pin.hashes) - 1 else ""))
            if pin.via:
                lines.append(f"    # via {', '.join(pin.via)}")
        return "\n".join(lines) + "\n"


def pins_digest(pins: Iterable[Pin]) -> str:
    import hashlib  # only when a lock is fingerprinted

    text = "\n".join(
        f"{p.key}=={p.version} {' '.join(sorted(p.hashes))}" for p in sorted(pins, key=lambda p: p.key)
    )
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def parse_requirements(text: str, where: str) -> tuple[Pin, ...]:
    """``name==version`` entries with their ``--hash`` and ``# via`` lines (pip-compile/uv output shape)."""
    pins: list[Pin] = []
    head: tuple[str, str] | None = None
    hashes: list[str] = []
    via: list[str] = []
    in_via = False

    def close() -> None:
        if head is not None:
            pins.append(Pin(name=head[0], version=head[1], hashes=tuple(hashes), via=tuple(via)))

    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.rstrip().removesuffix("\\").strip()
        if not stripped:
            in_via = False
            continue
        if not raw[:1].isspace():
            in_via = False
            if stripped.startswith("#"):
                continue
            match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==([^\s;]+)(\s*;.*)?", stripped)
            if match is None:
                raise DataError(f"expected name==version, got {stripped!r}", where=f"{where}:{number}")
            close()
            head, hashes, via = (match[1], match[3]), [], []
            continue
        if head is None:
            raise DataError(f"continuation line before any pin: {stripped!r}", where=f"{where}:{number}")
        if stripped.startswith("--hash="):
            hashes.append(stripped.removeprefix("--hash="))
        elif stripped.startswith("# via"):
            rest = stripped.removeprefix("# via").strip()
            via.extend(v.strip() for v in rest.split(",") if v.strip())
            in_via = not rest
        elif stripped.startswith("#") and in_via:
            via.append(stripped.lstrip("#").strip())
        elif not stripped.startswith("#"):
            raise DataError(f"unexpected line {stripped!r}", where=f"{where}:{number}")
    close()
    return tuple(pins)


def parse_lock(text: str, where: str) -> Lock:
    """A lock file's header and pins; a hand-edited or foreign file is a one-line ``DataError``."""
    lines = text.splitlines()
    if not lines or not lines[0].startswith(_HEADER):
        raise DataError(
            "not an imagesmith lock (no header)", where=f"{where}:1", hint="run `imagesmith images lock`"
        )
    image = lines[0].removeprefix(_HEADER).split(":", 1)[0].strip()
    fields: dict[str, str] = {}
    for line in lines[1:]:
        if not line.startswith("#"):
            break
        key, sep, value = line.removeprefix("#").strip().partition(": ")
        if sep and key in _FIELDS:
            fields[key] = value.strip()
    missing = [key for key in _FIELDS if key not in fields]
    if missing:
        raise DataError(f"lock header lacks {', '.join(missing)}", where=f"{where}:1")
    return Lock(
        image=image,
        requirements=tuple(fields["requirements"].split()),
        parent=None if fields["parent"] == "-" else fields["parent"],
        python=fields["python"],
        platform=fields["platform"],
        index=fields["index"],
        extra_index=None if fields["extra-index"] == "-" else fields["extra-index"],
        resolver=fields["resolver"],
        inputs=fields["inputs"],
        pins=parse_requirements(text, where),
    )


def constraints_text(pins: Iterable[Pin], *, source: str) -> str:
    """The constraints file: ``name==version`` per installed distribution, build tools left out."""
    body = sorted({p.key: f"{p.name}=={p.version}" for p in pins if p.key not in UNPINNED}.items())
    return (
        f"# The curated image's installed Python packages ({source}); pip and uv read this file through\n"
        "# PIP_CONSTRAINT / UV_CONSTRAINT, so a project install keeps these versions or fails naming them.\n"
        + "".join(line + "\n" for _key, line in body)
    )


def parse_constraints(text: str, where: str) -> tuple[Pin, ...]:
    return parse_requirements(text, where)


@dataclass(frozen=True, kw_only=True)
class Conflict:
    """One package the project wants other than the image pins."""

    package: str
    pinned: str  # the image's ``name==version``
    wanted: tuple[str, ...]  # "proj 0.1.0 requires torch>=2.14", ...

    def one_line(self, *, constraints: str = CONSTRAINTS_PATH) -> str:
        return (
            f"imagesmith: {'; '.join(self.wanted)}, but the curated image pins {self.pinned} ({constraints}):"
            f" keep the image's {self.package} (relax the requirement), or choose another curated image;"
            " a deliberate override is `--build-arg IMAGE_PINS=off`"
        )


_DEPENDS = re.compile(r"^\s*(?P<who>.+?) depends on (?P<req>[A-Za-z0-9][A-Za-z0-9._-]*(\[[^\]]*\])?\s*\S*)")
_REQUESTED = re.compile(r"^\s*The user requested (?P<constraint>\(constraint\) )?(?P<req>\S+)")
_REQ_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*")


def conflicts(pip_output: str) -> tuple[Conflict, ...]:
    """Read pip's "The conflict is caused by:" block: for every package the image pins (a constraint),
    who asked for what. Empty when the output is not a constraint conflict."""
    pinned: dict[str, str] = {}
    wanted: dict[str, list[str]] = {}
    for line in pip_output.splitlines():
        requested = _REQUESTED.match(line)
        if requested:
            req = requested["req"]
            name = _REQ_NAME.match(req)
            if name is None:
                continue
            key = normalize(name[0])
            if requested["constraint"]:
                pinned[key] = req
            else:
                wanted.setdefault(key, []).append(f"the install command requires {req}")
            continue
        depends = _DEPENDS.match(line)
        if depends:
            req = depends["req"].strip()
            name = _REQ_NAME.match(req)
            if name is not None:
                wanted.setdefault(normalize(name[0]), []).append(f"{depends['who'].strip()} requires {req}")
    return tuple(
        Conflict(package=_REQ_NAME.match(pin)[0], pinned=pin, wanted=tuple(dict.fromkeys(wanted[key])))  # type: ignore[index]
        for key, pin in sorted(pinned.items())
        if key in wanted
    )
