"""A project's pins on its curated image: the image's constraints for local development (from the team's
locks) and the ``FROM tag@sha256:...`` digest (from the team's registry).

The image itself enforces its pins (``PIP_CONSTRAINT``); this module gives the project the same set outside
the image (``.imagesmith/constraints.txt``, used by the README's and CI's ``pip install -c``) and the
digest that makes the FROM line mean one image forever.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from imagesmith.contract import paths, pins, plan_json
from imagesmith.contract.tags import ImageRef
from imagesmith.errors import ImagesmithError

PLAN_JSON = Path(paths.PLAN_JSON)


def _image_name(plan: plan_json.Plan, ref: str) -> str | None:
    wanted = ImageRef.parse(ref)
    bare = str(ImageRef(repository=wanted.repository, tag=wanted.tag, digest=None))
    for image in plan.images:
        if bare in (image.tag, *image.aliases):
            return image.name
    return None


def constraints_for(source: Path | None, base_image: str) -> str:
    """The constraints text of ``base_image`` from the template repository's locks, or a note saying
    where the pins come from instead (the image's own file, at build time)."""
    if source is None or not (source / PLAN_JSON).is_file():
        return _no_locks(base_image, "the template has no base_images/plan.json")
    try:
        plan = plan_json.load(source / PLAN_JSON, check_files=False)
    except ImagesmithError as exc:
        return _no_locks(base_image, exc.one_line())
    name = _image_name(plan, base_image)
    if name is None:
        return _no_locks(base_image, "the image is not in the template's plan")
    chain = [*plan.ancestors(name), plan.by_name()[name]]
    collected: list[pins.Pin] = []
    for image in chain:
        path = source / "base_images" / image.name / pins.LOCK_NAME
        try:
            lock = pins.parse_lock(path.read_text(encoding="utf-8"), str(path))
        except FileNotFoundError:
            return _no_locks(base_image, f"{image.name} has no lock in the template repository")
        except ImagesmithError as exc:
            return _no_locks(base_image, exc.one_line())
        collected.extend(lock.pins)
    return pins.constraints_text(collected, source=f"{base_image}, from the team's locks")


def _no_locks(base_image: str, why: str) -> str:
    return (
        f"# No constraints for {base_image}: {why}.\n"
        f"# The image still pins its packages at build time ({pins.CONSTRAINTS_PATH}, via PIP_CONSTRAINT);\n"
        "# for local development copy that file here:\n"
        f"#   docker run --rm --entrypoint cat {base_image} {pins.CONSTRAINTS_PATH} > .imagesmith/constraints.txt\n"
    )


@dataclass(frozen=True, kw_only=True)
class DigestAnswer:
    ref: str  # what the FROM line names: ``tag@sha256:...`` when resolved, else the tag
    digest: str | None
    why_not: str | None  # why there is no digest


# Registries that failed in this process: a render resolves the base and the dev stage's devel twin, two tags of
# one registry, and an unreachable registry would cost its timeout for each (answers are per-process, as the
# cache on resolve_digest already makes them).
_FAILED: dict[str, str] = {}


@lru_cache(maxsize=64)
def resolve_digest(base_image: str, timeout: float = 5) -> DigestAnswer:
    """The digest the tag points at in its registry now; an unreachable registry or an unknown tag is an
    answer with a reason (the project renders unpinned and says so), not an exception. A registry that
    failed once is not asked again: the answer repeats its reason."""
    from imagesmith.registry.client import Registry

    ref = ImageRef.parse(base_image)
    if ref.digest:
        return DigestAnswer(ref=base_image, digest=ref.digest, why_not=None)
    host = ref.registry or "docker.io"
    if host in _FAILED:
        return DigestAnswer(ref=base_image, digest=None, why_not=_FAILED[host])
    try:
        digest = Registry.for_ref(ref, timeout=timeout).digest(ref)
    except ImagesmithError as exc:
        _FAILED[host] = exc.one_line()
        return DigestAnswer(ref=base_image, digest=None, why_not=exc.one_line())
    if digest is None:
        return DigestAnswer(
            ref=base_image, digest=None, why_not=f"{ref.registry} has no tag {ref.tag_or_latest}"
        )
    return DigestAnswer(ref=str(ref.with_digest(digest)), digest=digest, why_not=None)
