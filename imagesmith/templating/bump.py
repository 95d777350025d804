"""``imagesmith images bump``: move a project's ``FROM tag@sha256:...`` pin to the tag's newest digest.

Pure reading and rewriting of the Dockerfile's ``ARG BASE_IMAGE=`` line; the registry answers the digest
(and the labels, so the report says what the move changes: lock, framework, CUDA, driver floor).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from imagesmith.contract import labels as labels_contract
from imagesmith.contract.tags import ImageRef
from imagesmith.errors import EnvironmentProblem, NegativeAnswer, UsageError

ARG_LINE = re.compile(r"^ARG BASE_IMAGE=(?P<ref>\S+)\s*$", re.MULTILINE)
NOT_PINNED = re.compile(r"^# NOT PINNED: .*\n", re.MULTILINE)
PINNED_NOTE = (
    "# Pinned by digest: this project builds FROM exactly one image. `imagesmith images bump` moves the pin\n"
    "# to the tag's newest digest and prints what changed.\n"
)
WATCHED = (
    labels_contract.LOCK,
    labels_contract.FRAMEWORK,
    labels_contract.CUDA,
    labels_contract.CUDNN,
    labels_contract.MIN_DRIVER,
    labels_contract.SM,
)


@dataclass(frozen=True, kw_only=True)
class Bump:
    dockerfile: Path
    tag: str  # the reference without its digest
    old: str | None  # the pinned digest before (None: was not pinned)
    new: str
    changes: tuple[str, ...]  # label changes between the two images

    @property
    def moved(self) -> bool:
        return self.old != self.new


def base_ref(dockerfile: Path) -> tuple[str, int]:
    """The ``ARG BASE_IMAGE=`` value and its line number."""
    try:
        text = dockerfile.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(
            "no Dockerfile here", where=str(dockerfile), hint="run in a generated project"
        ) from None
    match = ARG_LINE.search(text)
    if match is None:
        raise UsageError("no `ARG BASE_IMAGE=` line", where=str(dockerfile))
    return match["ref"], text.count("\n", 0, match.start()) + 1


def plan_bump(dockerfile: Path) -> Bump:
    from imagesmith.registry.client import Registry

    value, line = base_ref(dockerfile)
    ref = ImageRef.parse(value)
    if ref.tag is None:
        raise UsageError(f"{value} names no tag to follow", where=f"{dockerfile}:{line}")
    tag_ref = ImageRef(repository=ref.repository, tag=ref.tag, digest=None)
    registry = Registry.for_ref(tag_ref)
    digest = registry.digest(tag_ref)
    if digest is None:
        raise NegativeAnswer(
            f"{registry.host} has no tag {ref.tag} of {ref.path}", where=f"{dockerfile}:{line}"
        )
    changes: tuple[str, ...] = ()
    if ref.digest and ref.digest != digest:
        changes = _label_changes(registry, ref, tag_ref.with_digest(digest))
    return Bump(dockerfile=dockerfile, tag=str(tag_ref), old=ref.digest, new=digest, changes=changes)


def _label_changes(registry: object, old: ImageRef, new: ImageRef) -> tuple[str, ...]:
    from imagesmith.registry.client import Registry

    assert isinstance(registry, Registry)
    try:
        before_manifest, after_manifest = registry.manifest(old), registry.manifest(new)
        if before_manifest is None or after_manifest is None:
            return ("the old digest is gone from the registry: no comparison",)
        before = registry.labels(old, before_manifest)
        after = registry.labels(new, after_manifest)
    except EnvironmentProblem as exc:
        return (f"labels unreadable: {exc.one_line()}",)
    return tuple(
        f"{key}: {before.get(key, '-')} -> {after.get(key, '-')}"
        for key in WATCHED
        if before.get(key) != after.get(key)
    )


def apply(bump: Bump) -> None:
    """Rewrite the ARG line (and drop a NOT PINNED note); everything else in the file stays as it is."""
    text = bump.dockerfile.read_text(encoding="utf-8")
    pinned = f"{bump.tag}@{bump.new}"
    text = ARG_LINE.sub(lambda _m: f"ARG BASE_IMAGE={pinned}", text, count=1)
    if NOT_PINNED.search(text):
        text = NOT_PINNED.sub(PINNED_NOTE, text, count=1)
    bump.dockerfile.write_text(text, encoding="utf-8")
