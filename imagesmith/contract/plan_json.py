"""``plan.json`` (see docs/plan-json.md): written by ``images render``, read by the builder and the templates.

The one home of its format: ``dumps`` writes it from records, ``load`` reads it back into the same
records (paths resolved against the plan's folder); the builder never re-plans. Errors name
``plan.json:LINE`` so that a hand-edited plan points at the entry to fix.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imagesmith.errors import DataError, UsageError

SUPPORTED_SCHEMA = 1
# Smoke tests an image declares; each image also runs its ancestors' (docs/plan-json.md).
KNOWN_TESTS = (
    "doctor",
    "labels",
    "framework-import",
    "framework-versions",
    "cuda-duplicates",
    "nvcc-compile",
    "torch-extension",
)
SCHEMA_KEY = '"schema"'
IMAGES_KEY = '"images"'
UNCOVERED_KEY = '"uncovered"'


@dataclass(frozen=True, kw_only=True)
class Framework:
    name: str
    version: str
    variant: str | None
    import_name: str


@dataclass(frozen=True, kw_only=True)
class BaseRef:
    """Where an image starts: an OS base (``kind == "os"``) or another planned image."""

    kind: str
    name: str
    ref: str | None


@dataclass(frozen=True, kw_only=True)
class PlannedImage:
    name: str
    tag: str
    aliases: tuple[str, ...]
    parent: str | None
    base: BaseRef
    context: Path
    dockerfile: Path
    labels: tuple[tuple[str, str], ...]
    python: str | None
    framework: Framework | None
    cuda_runtime: str | None
    tests: tuple[str, ...]
    needs_imagesmith_wheel: bool
    line: int = 0
    variant: str | None = None
    min_driver: str | None = None
    nodes: tuple[str, ...] = ()

    @property
    def label_dict(self) -> dict[str, str]:
        return dict(self.labels)


@dataclass(frozen=True, kw_only=True)
class Uncovered:
    """A fleet node x framework line pair the plan gives no image (rendered with --allow-uncovered)."""

    node: str
    line: str
    why: str


RELEASE_KEY = "imagesmith_release"


@dataclass(frozen=True, kw_only=True)
class Plan:
    path: Path
    images: tuple[PlannedImage, ...]
    policy: str | None = None
    generated_by: str | None = None
    # The imagesmith release the policy pins (imagesmith-version): the base images install exactly it.
    # None for a policy that pins none (the images carry whatever imagesmith builds them).
    imagesmith_release: str | None = None
    # Fleet nodes the plan leaves without an image; non-empty only when rendered with --allow-uncovered.
    uncovered: tuple[Uncovered, ...] = ()

    @property
    def root(self) -> Path:
        return self.path.parent

    def by_name(self) -> dict[str, PlannedImage]:
        return {image.name: image for image in self.images}

    def ancestors(self, name: str) -> tuple[PlannedImage, ...]:
        """Parents of ``name``, nearest first."""
        index = self.by_name()
        chain: list[PlannedImage] = []
        parent = index[name].parent
        while parent is not None:
            chain.append(index[parent])
            parent = index[parent].parent
        return tuple(chain)

    def tests_for(self, name: str) -> tuple[str, ...]:
        """The image's own tests plus every ancestor's, each once, in declaration order."""
        seen: dict[str, None] = {}
        for image in (*reversed(self.ancestors(name)), self.by_name()[name]):
            for test in image.tests:
                seen.setdefault(test, None)
        return tuple(seen)


def _line_of(text: str, needle: str) -> int:
    offset = text.find(needle)
    return text.count("\n", 0, offset) + 1 if offset >= 0 else 1


def _str(entry: dict[str, Any], key: str, where: str, *, optional: bool = False) -> str | None:
    value = entry.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value:
        raise DataError(f"{key!r} must be a non-empty string, got {value!r}", where=where)
    return value


def _image(entry: Any, plan_path: Path, text: str, index: int) -> PlannedImage:
    if not isinstance(entry, dict):
        raise DataError(f"images[{index}] must be an object", where=str(plan_path))
    name_value = entry.get("name")
    line = _line_of(text, f'"name": {json.dumps(name_value)}') if isinstance(name_value, str) else 1
    where = f"{plan_path}:{line}"
    name = _str(entry, "name", where)
    tag = _str(entry, "tag", where)
    assert name is not None and tag is not None
    aliases = entry.get("aliases") or []
    if not isinstance(aliases, list) or not all(isinstance(a, str) and a for a in aliases):
        raise DataError("'aliases' must be a list of strings", where=where)
    raw_from = entry.get("from")
    if not isinstance(raw_from, dict) or raw_from.get("kind") not in ("os", "image"):
        raise DataError('\'from\' must be {"kind": "os"|"image", "name": ...}', where=where)
    base = BaseRef(
        kind=str(raw_from["kind"]),
        name=str(_str(raw_from, "name", where)),
        ref=_str(raw_from, "ref", where, optional=raw_from["kind"] == "image"),
    )
    parent = _str(entry, "parent", where, optional=True)
    if base.kind == "image" and base.name != parent:
        raise DataError(f"'from' names image {base.name!r} but 'parent' is {parent!r}", where=where)
    if base.kind == "os" and parent is not None:
        raise DataError(f"an image built from an OS base cannot have parent {parent!r}", where=where)
    labels = entry.get("labels") or {}
    if not isinstance(labels, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
    ):
        raise DataError("'labels' must map strings to strings", where=where)
    framework = None
    raw_fw = entry.get("framework")
    if raw_fw is not None:
        if not isinstance(raw_fw, dict):
            raise DataError("'framework' must be an object or null", where=where)
        fw_name = str(_str(raw_fw, "name", where))
        framework = Framework(
            name=fw_name,
            version=str(_str(raw_fw, "version", where)),
            variant=_str(raw_fw, "variant", where, optional=True),
            import_name=_str(raw_fw, "import", where, optional=True) or fw_name,
        )
    tests = entry.get("tests") or []
    if not isinstance(tests, list) or not all(isinstance(t, str) for t in tests):
        raise DataError("'tests' must be a list of strings", where=where)
    for test in tests:
        if test not in KNOWN_TESTS:
            raise DataError(f"unknown smoke test {test!r} (known: {', '.join(KNOWN_TESTS)})", where=where)
    context = plan_path.parent / str(_str(entry, "context", where))
    dockerfile = plan_path.parent / str(_str(entry, "dockerfile", where))
    return PlannedImage(
        name=name,
        tag=tag,
        aliases=tuple(aliases),
        parent=parent,
        base=base,
        context=context,
        dockerfile=dockerfile,
        labels=tuple(sorted(labels.items())),
        python=_str(entry, "python", where, optional=True),
        framework=framework,
        cuda_runtime=_str(entry, "cuda_runtime", where, optional=True),
        tests=tuple(tests),
        needs_imagesmith_wheel=bool(entry.get("needs_imagesmith_wheel", False)),
        line=line,
        variant=_str(entry, "variant", where, optional=True),
        min_driver=_str(entry, "min_driver", where, optional=True),
        nodes=_strings(entry, "nodes", where),
    )


def _strings(entry: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = entry.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise DataError(f"{key!r} must be a list of strings", where=where)
    return tuple(value)


def load(path: Path, *, check_files: bool = True) -> Plan:
    """Parse and check ``plan.json``; every problem is a DataError naming ``file:line``.

    ``check_files=False`` reads the facts without requiring the Dockerfiles beside it (the templates
    read a team's plan for its tags and coverage only).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(
            "no such plan file", where=str(path), hint="run `imagesmith images render` first or pass --plan"
        ) from None
    except OSError as exc:
        raise UsageError(f"cannot read plan: {exc.strerror}", where=str(path)) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"invalid JSON: {exc.msg}", where=f"{path}:{exc.lineno}:{exc.colno}") from None
    if not isinstance(data, dict):
        raise DataError("plan must be a JSON object", where=f"{path}:1")
    if data.get("schema") != SUPPORTED_SCHEMA:
        raise DataError(
            f"unsupported plan schema {data.get('schema')!r} (this imagesmith reads {SUPPORTED_SCHEMA})",
            where=f"{path}:{_line_of(text, SCHEMA_KEY)}",
        )
    raw_images = data.get("images")
    if not isinstance(raw_images, list) or not raw_images:
        raise DataError("'images' must be a non-empty list", where=f"{path}:{_line_of(text, IMAGES_KEY)}")
    images = tuple(_image(entry, path, text, i) for i, entry in enumerate(raw_images))
    seen: set[str] = set()
    for image in images:
        where = f"{path}:{image.line}"
        if image.name in seen:
            raise DataError(f"image {image.name!r} is planned twice", where=where)
        if image.parent is not None and image.parent not in seen:
            raise DataError(
                f"parent {image.parent!r} of {image.name!r} is not planned before it (images must be parents first)",
                where=where,
            )
        if check_files and not image.dockerfile.is_file():
            raise DataError(f"Dockerfile {image.dockerfile} does not exist", where=where)
        if check_files and not image.context.is_dir():
            raise DataError(f"context directory {image.context} does not exist", where=where)
        seen.add(image.name)
    raw_uncovered = data.get("uncovered") or []
    if not isinstance(raw_uncovered, list) or not all(
        isinstance(u, dict) and all(isinstance(u.get(k), str) for k in ("node", "line", "why"))
        for u in raw_uncovered
    ):
        raise DataError(
            '\'uncovered\' must be a list of {"node", "line", "why"} objects',
            where=f"{path}:{_line_of(text, UNCOVERED_KEY)}",
        )
    uncovered = [Uncovered(node=u["node"], line=u["line"], why=u["why"]) for u in raw_uncovered]
    return Plan(
        path=path,
        images=images,
        policy=data.get("policy") if isinstance(data.get("policy"), str) else None,
        generated_by=data.get("generated_by") if isinstance(data.get("generated_by"), str) else None,
        imagesmith_release=(data.get(RELEASE_KEY) if isinstance(data.get(RELEASE_KEY), str) else None),
        uncovered=tuple(uncovered),
    )


def _entry(image: PlannedImage, root: Path) -> dict[str, Any]:
    if image.base.kind == "os":
        source: dict[str, Any] = {"kind": "os", "name": image.base.name, "ref": image.base.ref}
    else:
        source = {"kind": "image", "name": image.base.name}
    framework = image.framework
    return {
        "name": image.name,
        "tag": image.tag,
        "aliases": list(image.aliases),
        "parent": image.parent,
        "from": source,
        "context": _relative(image.context, root),
        "dockerfile": _relative(image.dockerfile, root),
        "labels": dict(image.labels),
        "python": image.python,
        "variant": image.variant,
        "framework": (
            {
                "name": framework.name,
                "version": framework.version,
                "variant": framework.variant,
                "import": framework.import_name,
            }
            if framework
            else None
        ),
        "cuda_runtime": image.cuda_runtime,
        "min_driver": image.min_driver,
        "nodes": list(image.nodes),
        "tests": list(image.tests),
        "needs_imagesmith_wheel": image.needs_imagesmith_wheel,
    }


def _relative(path: Path, root: Path) -> str:
    return (path.relative_to(root) if path.is_absolute() else path).as_posix()


def dumps(
    images: tuple[PlannedImage, ...],
    *,
    generated_by: str,
    policy: str,
    uncovered: tuple[Uncovered, ...] = (),
    root: Path = Path(),
    imagesmith_release: str | None = None,
) -> str:
    """The text of ``plan.json``; image paths are written relative to ``root`` (the plan's folder)."""
    document: dict[str, Any] = {
        "schema": SUPPORTED_SCHEMA,
        "generated_by": generated_by,
        "policy": policy,
    }
    if imagesmith_release:
        document[RELEASE_KEY] = imagesmith_release
    if uncovered:
        document["uncovered"] = [{"node": u.node, "line": u.line, "why": u.why} for u in uncovered]
    document["images"] = [_entry(image, root) for image in images]
    return json.dumps(document, indent=2) + "\n"
