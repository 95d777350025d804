"""The image policy (``imagesmith.yaml``): what to build and for which fleet, validated with file:line errors."""

from __future__ import annotations

import os
import re

from packaging.specifiers import InvalidSpecifier, SpecifierSet

from imagesmith.contract import requirement
from imagesmith.contract.record import record
from imagesmith.errors import DataError, UnknownName
from imagesmith.images.yamlpos import Located, load_file, load_text
from imagesmith.matrix.knowledge import FRAMEWORKS, Knowledge
from imagesmith.matrix.model import Gpu
from imagesmith.matrix.versions import NvVersion

TYPE_CHECKING = False  # mypy treats this name as True
if TYPE_CHECKING:
    from typing import Any

DEFAULT_POLICY = "default_policy.yaml"
VARIANTS = ("runtime", "devel")
# "cuda" is a CUDA-runtime-only image line (NVIDIA's `base` flavour, from pip wheels).
LINE_KINDS = (*FRAMEWORKS, "cuda")
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]*")


@record
class OsBase:
    name: str
    image: str
    python: str
    description: str


@record
class FrameworkLine:
    framework: str  # torch | tensorflow | jax | cuda
    specifier: str  # PEP 440 for frameworks, a CUDA major.minor for "cuda"
    where: str


@record
class FleetNode:
    name: str
    driver: NvVersion
    gpu: Gpu
    count: int
    where: str


@record
class Policy:
    source: str
    registry: str
    bases: tuple[OsBase, ...]
    pythons: tuple[str, ...]
    variants: tuple[str, ...]
    lines: tuple[FrameworkLine, ...]
    fleet: tuple[FleetNode, ...]
    maintainer: str
    vendor: str
    # The imagesmith release the team's repository is made for (contract/requirement.py); None: not pinned
    # (the embedded default, a policy written before init existed): images carry the running imagesmith.
    imagesmith_version: str | None = None
    pin_where: str = ""  # file:line of the pin, for the skew check's message
    # The immutable tags' moving part: 0 (absent) adds nothing, N adds "-rN" (docs/images.md, "Tag contract").
    release: int = 0


def _expect(doc: Located, value: Any, kind: type, *path: str | int) -> Any:
    if not isinstance(value, kind) or (kind is str and not value):
        want = {dict: "a mapping", list: "a list", str: "a non-empty string", int: "an integer"}[kind]
        raise DataError(f"{'.'.join(map(str, path)) or 'document'} must be {want}", where=doc.where(*path))
    return value


def _get(
    doc: Located, mapping: dict[str, Any], key: str, kind: type, *path: str | int, default: Any = None
) -> Any:
    if key not in mapping:
        if default is not None:
            return default
        raise DataError(f"missing required key {key!r}", where=doc.where(*path))
    return _expect(doc, mapping[key], kind, *path, key)


def parse_policy(doc: Located, kb: Knowledge) -> Policy:
    top = _expect(doc, doc.data, dict)
    allowed = {
        "schema",
        "registry",
        "maintainer",
        "vendor",
        "bases",
        "pythons",
        "variants",
        "frameworks",
        "fleet",
        requirement.KEY,
        "release",
    }
    for key in top:
        if key not in allowed:
            raise DataError(
                f"unknown key {key!r} (known: {', '.join(sorted(allowed))})", where=doc.where(key)
            )
    if top.get("schema", 1) != 1:
        raise DataError("only schema: 1 is understood", where=doc.where("schema"))
    pin = (
        str(requirement.parse_pin(top[requirement.KEY], where=doc.where(requirement.KEY)))
        if requirement.KEY in top
        else None
    )
    release = top.get("release", 0)
    if not isinstance(release, int) or isinstance(release, bool) or release < 0:
        raise DataError(
            f"release must be a whole number (0 or more), got {release!r}", where=doc.where("release")
        )
    registry = _get(doc, top, "registry", str).rstrip("/")
    bases = []
    for name, spec in _get(doc, top, "bases", dict).items():
        _expect(doc, spec, dict, "bases", name)
        if not _NAME.fullmatch(name):
            raise DataError(
                f"base name {name!r} must be lowercase letters, digits, '.', '_' or '-'",
                where=doc.where("bases", name),
            )
        python = str(_get(doc, spec, "python", str, "bases", name))
        bases.append(
            OsBase(
                name=name,
                image=_get(doc, spec, "image", str, "bases", name),
                python=python,
                description=str(spec.get("description", name)),
            )
        )
    pythons = tuple(
        str(_expect(doc, p, str, "pythons", i)) for i, p in enumerate(_get(doc, top, "pythons", list))
    )
    if not pythons:
        raise DataError(
            "pythons lists no Python version: the plan would have no images", where=doc.where("pythons")
        )
    for i, python in enumerate(pythons):
        if not any(b.python == python for b in bases):
            raise DataError(
                f"python {python} is provided by no base (bases give: {', '.join(b.python for b in bases)})",
                where=doc.where("pythons", i),
            )
    variants = tuple(_get(doc, top, "variants", list, default=list(VARIANTS)))
    for i, variant in enumerate(variants):
        if variant not in VARIANTS:
            raise DataError(
                f"unknown variant {variant!r} (known: {', '.join(VARIANTS)})", where=doc.where("variants", i)
            )
    lines = []
    for framework, specs in _get(doc, top, "frameworks", dict).items():
        name = Knowledge.framework_name(framework) or (framework if framework == "cuda" else None)
        if name is None:
            raise DataError(
                f"unknown framework {framework!r} (known: {', '.join(LINE_KINDS)})",
                where=doc.where("frameworks", framework),
            )
        for i, text in enumerate(_expect(doc, specs, list, "frameworks", framework)):
            text = str(text)
            where = doc.where("frameworks", framework, i)
            if name == "cuda":
                try:
                    NvVersion.parse(text)
                except ValueError:
                    raise DataError(
                        f"CUDA line must be a version like 12.8, got {text!r}", where=where
                    ) from None
            else:
                try:
                    SpecifierSet(text)
                except InvalidSpecifier:
                    raise DataError(
                        f"not a version specifier: {text!r} (like '~=2.13.0')", where=where
                    ) from None
            lines.append(FrameworkLine(framework=name, specifier=text, where=where))
    if not lines:
        raise DataError(
            "frameworks lists no framework line (like torch: ['~=2.13.0']): the plan would have no images",
            where=doc.where("frameworks"),
        )
    fleet = []
    for i, node in enumerate(_get(doc, top, "fleet", list)):
        _expect(doc, node, dict, "fleet", i)
        driver_text = str(_get(doc, node, "driver", str, "fleet", i))
        try:
            driver = NvVersion.parse(driver_text)
        except ValueError:
            raise DataError(
                f"not a driver version: {driver_text!r}", where=doc.where("fleet", i, "driver")
            ) from None
        gpu_name = str(_get(doc, node, "gpu", str, "fleet", i))
        try:
            gpu = kb.find_gpu(gpu_name)
        except UnknownName as exc:
            raise DataError(exc.message, where=doc.where("fleet", i, "gpu"), hint=exc.hint) from None
        count = node.get("count", 1)
        if not isinstance(count, int) or count < 1:
            raise DataError("count must be a positive integer", where=doc.where("fleet", i, "count"))
        name = str(node.get("name", f"{gpu.name} / {driver}"))
        fleet.append(FleetNode(name=name, driver=driver, gpu=gpu, count=count, where=doc.where("fleet", i)))
    if not fleet:
        raise DataError(
            "the fleet is empty: list at least one node type ({name, driver, gpu}) to plan images for",
            where=doc.where("fleet"),
        )
    names = [n.name for n in fleet]
    for i, name in enumerate(names):
        if names.index(name) != i:
            raise DataError(f"duplicate fleet node name {name!r}", where=doc.where("fleet", i))
    return Policy(
        source=doc.file,
        registry=registry,
        bases=tuple(bases),
        pythons=pythons,
        variants=variants,
        lines=tuple(lines),
        fleet=tuple(fleet),
        maintainer=str(top.get("maintainer", "ML platform team")),
        vendor=str(top.get("vendor", "imagesmith")),
        imagesmith_version=pin,
        pin_where=doc.where(requirement.KEY) if pin else "",
        release=release,
    )


def default_policy_text() -> str:
    # A file beside this module in the wheel (package data); importlib.resources would add ~5 ms.
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, DEFAULT_POLICY), encoding="utf-8") as fh:
        return fh.read()


def embedded_policy(kb: Knowledge) -> Policy:
    return parse_policy(load_text(default_policy_text(), "<embedded default policy>"), kb)


def load_policy(path: str | os.PathLike[str] | None, kb: Knowledge) -> Policy:
    """The policy at ``path``; without one, ``./imagesmith.yaml`` if present, else the embedded default.

    A policy that pins ``imagesmith-version`` is refused (``VersionSkew``) by an imagesmith of another release
    line (``imagesmith upgrade``, whose job is to move the pin, parses the file itself)."""
    if path is None:
        if not os.path.isfile("imagesmith.yaml"):
            return embedded_policy(kb)
        path = "imagesmith.yaml"
    policy = parse_policy(load_file(path), kb)
    check_version(policy)
    return policy


def check_version(policy: Policy) -> None:
    """Refuse to work on a policy pinned to another imagesmith release line than the one running."""
    if policy.imagesmith_version is None:
        return
    from packaging.version import Version

    from imagesmith import __version__

    requirement.check(
        __version__,
        Version(policy.imagesmith_version),
        where=policy.pin_where,
        repository=os.path.dirname(os.path.abspath(policy.source)),
    )
