"""``imagesmith images bump``: move a project's ``FROM tag@sha256:...`` pins to their tags' newest digests.

Pure reading and rewriting of the Dockerfile's ``ARG BASE_IMAGE=`` line (the image you ship) and, where the
template wrote one, ``ARG DEV_BASE_IMAGE=`` (the devel twin the dev stage builds on), each moved on its own;
the registry answers the digest (and the labels, so the report says what the move changes: lock, framework,
CUDA, driver floor).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from imagesmith.contract import labels as labels_contract
from imagesmith.contract.tags import ImageRef
from imagesmith.errors import EnvironmentProblem, NegativeAnswer, UsageError

ARG_LINE = re.compile(r"^ARG (?P<arg>BASE_IMAGE|DEV_BASE_IMAGE)=(?P<ref>\S+)\s*$", re.MULTILINE)
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
    arg: str  # BASE_IMAGE | DEV_BASE_IMAGE
    tag: str  # the reference without its digest
    old: str | None  # the pinned digest before (None: was not pinned)
    new: str
    changes: tuple[str, ...]  # label changes between the two images

    @property
    def moved(self) -> bool:
        return self.old != self.new


def base_refs(dockerfile: Path) -> tuple[tuple[str, str, int], ...]:
    """``(arg, value, line number)`` of each ``ARG BASE_IMAGE=`` / ``ARG DEV_BASE_IMAGE=`` line, in file order."""
    try:
        text = dockerfile.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(
            "no Dockerfile here", where=str(dockerfile), hint="run in a generated project"
        ) from None
    found = tuple(
        (match["arg"], match["ref"], text.count("\n", 0, match.start()) + 1)
        for match in ARG_LINE.finditer(text)
    )
    if not any(arg == "BASE_IMAGE" for arg, _, _ in found):
        raise UsageError("no `ARG BASE_IMAGE=` line", where=str(dockerfile))
    return found


def plan_bumps(dockerfile: Path) -> tuple[Bump, ...]:
    """One ``Bump`` per pinned base line (checked in file order; the first failure stops with its line)."""
    return tuple(_plan_one(dockerfile, arg, value, line) for arg, value, line in base_refs(dockerfile))


def _plan_one(dockerfile: Path, arg: str, value: str, line: int) -> Bump:
    from imagesmith.registry.client import Registry

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
    return Bump(dockerfile=dockerfile, arg=arg, tag=str(tag_ref), old=ref.digest, new=digest, changes=changes)


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


def rewrite(text: str, bumps: tuple[Bump, ...]) -> str:
    """The Dockerfile text with each bumped ARG line moved (and a NOT PINNED note dropped); nothing else."""
    pinned = {bump.arg: f"{bump.tag}@{bump.new}" for bump in bumps}
    text = ARG_LINE.sub(lambda m: f"ARG {m['arg']}={pinned.get(m['arg'], m['ref'])}", text)
    if NOT_PINNED.search(text):
        text = NOT_PINNED.sub(PINNED_NOTE, text, count=1)
    return text


def apply(bumps: tuple[Bump, ...]) -> None:
    """Rewrite the Dockerfile's pinned base lines in place."""
    for dockerfile in {bump.dockerfile for bump in bumps}:
        text = dockerfile.read_text(encoding="utf-8")
        dockerfile.write_text(
            rewrite(text, tuple(b for b in bumps if b.dockerfile == dockerfile)), encoding="utf-8"
        )
