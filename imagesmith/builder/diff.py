"""``imagesmith images diff``: what changed between two builds of curated images.

Snapshots come from a build manifest (``manifest.json`` with the SBOMs beside it) or from an image in the
local engine (its labels, size and the SBOM it carries); ``diff`` is pure. Packages are compared by the
SBOM: added, removed, changed version, and rebuilt (same version, different installed files).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imagesmith.builder.sbom import Package, read_packages
from imagesmith.contract import labels as labels_contract
from imagesmith.errors import EnvironmentProblem, UsageError

# The labels that decide where an image runs, named as the report names them.
COMPATIBILITY = (
    (labels_contract.FRAMEWORK, "framework"),
    (labels_contract.CUDA, "CUDA"),
    (labels_contract.CUDNN, "cuDNN"),
    (labels_contract.MIN_DRIVER, "driver floor"),
    (labels_contract.FULL_DRIVER, "full-compatibility driver"),
    (labels_contract.SM, "SASS/PTX"),
    (labels_contract.PYTHON, "Python"),
)
VOLATILE_LABELS = (labels_contract.INPUT_HASH,)


@dataclass(frozen=True, kw_only=True)
class Snapshot:
    name: str
    ref: str  # where it was read from (a tag, or manifest.json#name)
    image_id: str | None
    labels: dict[str, str]
    size: int | None
    packages: tuple[Package, ...] | None  # None: no SBOM to read


@dataclass(frozen=True, kw_only=True)
class ImageDiff:
    name: str
    old: Snapshot | None
    new: Snapshot | None
    compatibility: tuple[tuple[str, str | None, str | None], ...] = ()
    labels_changed: tuple[tuple[str, str | None, str | None], ...] = ()
    added: tuple[Package, ...] = ()
    removed: tuple[Package, ...] = ()
    changed: tuple[tuple[Package, Package], ...] = ()
    rebuilt: tuple[Package, ...] = ()
    notes: tuple[str, ...] = field(default=())

    @property
    def size_delta(self) -> int | None:
        if self.old is None or self.new is None or self.old.size is None or self.new.size is None:
            return None
        return self.new.size - self.old.size

    @property
    def same(self) -> bool:
        return (
            self.old is not None
            and self.new is not None
            and not (self.compatibility or self.labels_changed or self.added or self.removed)
            and not (self.changed or self.rebuilt)
        )


def diff_one(old: Snapshot | None, new: Snapshot | None) -> ImageDiff:
    either = new or old
    name = either.name if either else "?"
    if old is None or new is None:
        return ImageDiff(name=name, old=old, new=new)
    compat = tuple(
        (title, old.labels.get(key), new.labels.get(key))
        for key, title in COMPATIBILITY
        if old.labels.get(key) != new.labels.get(key)
    )
    keys = sorted(
        (old.labels.keys() | new.labels.keys()) - {k for k, _ in COMPATIBILITY} - set(VOLATILE_LABELS)
    )
    labels_changed = tuple(
        (key, old.labels.get(key), new.labels.get(key))
        for key in keys
        if old.labels.get(key) != new.labels.get(key)
    )
    notes: list[str] = []
    if old.packages is None or new.packages is None:
        notes.append(
            f"no SBOM in {'the old' if old.packages is None else 'the new'} build: packages not compared"
        )
        return ImageDiff(
            name=name,
            old=old,
            new=new,
            compatibility=compat,
            labels_changed=labels_changed,
            notes=tuple(notes),
        )
    before = {p.key: p for p in old.packages}
    after = {p.key: p for p in new.packages}
    added = tuple(after[k] for k in sorted(after.keys() - before.keys()))
    removed = tuple(before[k] for k in sorted(before.keys() - after.keys()))
    changed = tuple(
        (before[k], after[k])
        for k in sorted(before.keys() & after.keys())
        if before[k].version != after[k].version
    )
    rebuilt = tuple(
        after[k]
        for k in sorted(before.keys() & after.keys())
        if before[k].version == after[k].version
        and before[k].digest
        and after[k].digest
        and before[k].digest != after[k].digest
    )
    return ImageDiff(
        name=name,
        old=old,
        new=new,
        compatibility=compat,
        labels_changed=labels_changed,
        added=added,
        removed=removed,
        changed=changed,
        rebuilt=rebuilt,
        notes=tuple(notes),
    )


def diff(old: list[Snapshot], new: list[Snapshot]) -> tuple[ImageDiff, ...]:
    """Pair by image name (a single snapshot on each side pairs regardless of name)."""
    if len(old) == 1 and len(new) == 1:
        return (diff_one(old[0], new[0]),)
    if len(new) == 1 and any(s.name == new[0].name for s in old):
        old = [s for s in old if s.name == new[0].name]
    elif len(old) == 1 and any(s.name == old[0].name for s in new):
        new = [s for s in new if s.name == old[0].name]
    before = {s.name: s for s in old}
    after = {s.name: s for s in new}
    names = list(dict.fromkeys([*before, *after]))
    return tuple(diff_one(before.get(n), after.get(n)) for n in names)


# ---- reading snapshots --------------------------------------------------------------------------------
def from_manifest(path: Path, only: str | None = None) -> list[Snapshot]:
    """Every image of a build manifest (or the one named after ``#``), with the SBOM the build copied out."""
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError("no such manifest", where=str(path)) from None
    except ValueError as exc:
        raise UsageError(f"not JSON: {exc}", where=str(path)) from None
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise UsageError("not an imagesmith build manifest (no images list)", where=str(path))
    out = []
    for entry in data["images"]:
        if only is not None and entry.get("name") != only:
            continue
        packages: tuple[Package, ...] | None = None
        sbom = entry.get("sbom")
        if isinstance(sbom, dict) and sbom.get("path"):
            sbom_path = path.parent / str(sbom["path"])
            try:
                packages = read_packages(sbom_path.read_text(encoding="utf-8"))
            except OSError:
                packages = None
        out.append(
            Snapshot(
                name=str(entry.get("name")),
                ref=f"{path}#{entry.get('name')}",
                image_id=entry.get("image_id"),
                labels={str(k): str(v) for k, v in (entry.get("labels") or {}).items()},
                size=entry.get("size"),
                packages=packages,
            )
        )
    if only is not None and not out:
        names = ", ".join(str(e.get("name")) for e in data["images"])
        raise UsageError(f"no image {only!r} in the manifest", where=str(path), hint=f"it has: {names}")
    return out


def from_engine(ref: str, client: Any) -> list[Snapshot]:
    """An image of the local engine: labels and size from inspect, packages from the SBOM it carries."""
    from docker.errors import ImageNotFound

    from imagesmith.builder import engine

    try:
        image = client.images.get(ref)
    except ImageNotFound:
        raise UsageError(
            "no such image in the local engine", where=ref, hint="a tag, an image ID, or a manifest.json path"
        ) from None
    labels = {str(k): str(v) for k, v in (image.labels or {}).items()}
    packages: tuple[Package, ...] | None = None
    inside = labels.get(labels_contract.SBOM)
    if inside:
        run = engine.run(client, image.id, ["cat", inside])
        if run.exit_code == 0:
            packages = read_packages(run.stdout)
    return [
        Snapshot(
            name=labels.get(labels_contract.OCI_TITLE) or ref,
            ref=ref,
            image_id=str(image.id),
            labels=labels,
            size=int(image.attrs.get("Size") or 0) or None,
            packages=packages,
        )
    ]


def read(spec: str, client_factory: Any) -> list[Snapshot]:
    """``path/manifest.json[#name]`` (any existing ``.json`` file) or a local image reference."""
    path_part, _, name = spec.partition("#")
    path = Path(path_part)
    if path.suffix == ".json" or path.is_file():
        return from_manifest(path, name or None)
    try:
        client = client_factory()
    except EnvironmentProblem:
        raise
    return from_engine(spec, client)


def to_json(diffs: tuple[ImageDiff, ...]) -> dict[str, Any]:
    def pkg(p: Package) -> dict[str, Any]:
        return {"kind": p.kind, "name": p.name, "version": p.version}

    return {
        "schema": 1,
        "same": all(d.same for d in diffs),
        "images": [
            {
                "name": d.name,
                "old": d.old.ref if d.old else None,
                "new": d.new.ref if d.new else None,
                "old_id": d.old.image_id if d.old else None,
                "new_id": d.new.image_id if d.new else None,
                "size": {
                    "old": d.old.size if d.old else None,
                    "new": d.new.size if d.new else None,
                    "delta": d.size_delta,
                },
                "compatibility": {title: {"old": a, "new": b} for title, a, b in d.compatibility},
                "labels": {key: {"old": a, "new": b} for key, a, b in d.labels_changed},
                "packages": {
                    "added": [pkg(p) for p in d.added],
                    "removed": [pkg(p) for p in d.removed],
                    "changed": [
                        {"kind": b.kind, "name": b.name, "old": a.version, "new": b.version}
                        for a, b in d.changed
                    ],
                    "rebuilt": [pkg(p) for p in d.rebuilt],
                },
                "notes": list(d.notes),
            }
            for d in diffs
        ],
    }


def to_text(diffs: tuple[ImageDiff, ...]) -> list[str]:
    from imagesmith.builder.sizes import human

    lines: list[str] = []
    for d in diffs:
        if d.old is None or d.new is None:
            lines.append(f"{d.name}: only in the {'new' if d.old is None else 'old'} build")
            continue
        ids = f"{(d.old.image_id or '?')[7:19]} -> {(d.new.image_id or '?')[7:19]}"
        lines.append(f"{d.name}: {'no changes' if d.same else 'changed'} ({ids})")
        delta = d.size_delta
        if delta:
            sign = "+" if delta > 0 else "-"
            lines.append(f"  size: {human(d.old.size)} -> {human(d.new.size)} ({sign}{human(abs(delta))})")
        for title, a, b in d.compatibility:
            lines.append(f"  {title}: {a or '-'} -> {b or '-'}")
        for key, a, b in d.labels_changed:
            lines.append(f"  label {key}: {a or '-'} -> {b or '-'}")
        if d.added or d.removed or d.changed or d.rebuilt:
            lines.append(
                f"  packages: {len(d.changed)} changed, {len(d.added)} added, {len(d.removed)} removed,"
                f" {len(d.rebuilt)} rebuilt at the same version"
            )
        lines += [f"    ~ {b.kind} {b.name} {a.version} -> {b.version}" for a, b in d.changed]
        lines += [f"    + {p.kind} {p.name} {p.version}" for p in d.added]
        lines += [f"    - {p.kind} {p.name} {p.version}" for p in d.removed]
        lines += [f"    = {p.kind} {p.name} {p.version} (same version, different files)" for p in d.rebuilt]
        lines += [f"  note: {n}" for n in d.notes]
    return lines
