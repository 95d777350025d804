"""Base-image questions answered from the curated image plan, so a project is always FROM a curated image."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class Curated(Protocol):
    """The fields of ``imagesmith.images.catalog.CuratedChoice`` this module reads."""

    @property
    def tag(self) -> str: ...
    @property
    def framework(self) -> str | None: ...
    @property
    def python(self) -> str: ...
    @property
    def variant(self) -> str: ...
    @property
    def cuda(self) -> str | None: ...


def framework_key(framework: str | None) -> str | None:
    """The template says "none" where the catalog says None (the plain base image)."""
    if framework is None:
        return None
    text = str(framework).strip().lower()
    return None if text in ("", "none") else text


def load_choices() -> list[Curated]:
    from imagesmith.images.catalog import curated_choices  # lazy: reads the embedded policy

    return list(curated_choices())


def python_versions(choices: Sequence[Curated], *, framework: str | None) -> list[str]:
    """Pythons with a curated image for this framework, newest first (all Pythons if none match)."""
    fw = framework_key(framework)
    matching = [c.python for c in choices if c.framework == fw] or [c.python for c in choices]
    return sorted(set(matching), key=_version_key, reverse=True)


def image_tags(
    choices: Sequence[Curated],
    *,
    framework: str | None,
    python: str | None,
    accelerator: str,
    keep: str = "",
) -> list[str]:
    """Curated tags that fit the answers so far, best fits first.

    Narrowing is soft (a filter that leaves nothing is dropped) so the menu is never empty. ``keep`` is
    the tag recorded by an earlier copy: when the plan retires it, the old answers must still replay
    during ``copier update`` (copier re-renders the old version with the recorded answers), so it stays
    selectable as long as it names one of the curated repositories.
    """
    fw = framework_key(framework)
    pool = list(choices)
    for keep_if in (
        lambda c: c.framework == fw,
        lambda c: python is None or c.python == str(python),
        lambda c: (c.cuda is None) == (accelerator == "cpu"),
    ):
        narrowed = [c for c in pool if keep_if(c)]
        pool = narrowed or pool
    first = [c.tag for c in pool if c.variant == "runtime"] + [c.tag for c in pool if c.variant != "runtime"]
    rest = [c.tag for c in choices if c.tag not in first]
    tags = first + rest
    if keep and keep not in tags and _same_repository(keep, tags):
        tags.append(keep)
    return tags


def default_tag(
    choices: Sequence[Curated], *, framework: str | None, python: str | None, accelerator: str
) -> str:
    """The plan's default for the framework and Python; the best fit in the list when it has none."""
    from imagesmith.errors import ImagesmithError
    from imagesmith.images.catalog import default_image

    fw = framework_key(framework)
    try:
        tag = str(default_image(framework=fw, python=str(python) if python else None, variant="runtime"))
    except (ImagesmithError, LookupError):
        # The plan has no default for this pair; fall back to the best fit of the menu.
        tag = ""
    tags = image_tags(choices, framework=framework, python=python, accelerator=accelerator)
    if tag in tags:
        return tag
    return tags[0] if tags else tag


def _same_repository(tag: str, tags: Sequence[str]) -> bool:
    repo = _repository(tag)
    return any(_repository(t) == repo for t in tags)


def _repository(tag: str) -> str:
    from imagesmith.contract.tags import repository_of

    return repository_of(tag)


def _version_key(version: str) -> tuple[int, ...]:
    parts: list[int] = []
    for piece in version.split("."):
        parts.append(int(piece) if piece.isdigit() else -1)
    return tuple(parts)
