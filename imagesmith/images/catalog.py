"""The curated images as choices for project templates: every project starts FROM one of these.

The template repository is also the team's policy repository, so the choices come from the template
source being rendered: its rendered ``base_images/plan.json`` first, else its ``imagesmith.yaml``
planned on the spot, and only when it has neither, the policy embedded in this imagesmith version.
Each template version therefore offers the images of its own policy, which is what ``copier update``
needs when it re-renders the old and the new version side by side.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path

from packaging.version import InvalidVersion, Version

from imagesmith.contract import paths, plan_json
from imagesmith.contract.labels import ImageLabels
from imagesmith.contract.sm import parse_sm
from imagesmith.contract.tags import parse_framework_tag
from imagesmith.matrix.versions import NvVersion

PLAN_JSON = Path(paths.PLAN_JSON)
POLICY_FILE = Path(paths.POLICY)
EMBEDDED = "the policy embedded in imagesmith"


@dataclass(frozen=True, kw_only=True)
class CuratedChoice:
    tag: str
    framework: str | None
    framework_version: str | None
    python: str
    variant: str  # runtime | devel (the plain base image counts as runtime)
    cuda: str | None  # major.minor
    aliases: tuple[str, ...] = ()
    nodes: tuple[str, ...] = ()  # the fleet nodes the image runs on
    # What the image promises the node must offer (io.imagesmith.min-driver and .sm): the templates turn them
    # into required node affinity on GPU Feature Discovery's labels.
    min_driver: str | None = None
    full_driver: str | None = None  # the toolkit's own driver floor (what JIT-compiling its PTX needs)
    sm: tuple[str, ...] = ()
    parent_tag: str | None = None  # the curated image this one is built FROM (a devel image's runtime twin)


@dataclass(frozen=True, kw_only=True)
class Catalog:
    """The curated images of one plan and the fleet it was made for."""

    source: str  # where the plan came from, for messages ("the template's base_images/plan.json")
    choices: tuple[CuratedChoice, ...]
    fleet: tuple[str, ...]

    def known(self) -> dict[str, CuratedChoice]:
        """Every reference a project may build FROM: each immutable tag and each rolling alias."""
        refs: dict[str, CuratedChoice] = {}
        for choice in self.choices:
            for ref in (choice.tag, *choice.aliases):
                refs.setdefault(ref, choice)
        return refs

    def dev_base(self, ref: str) -> CuratedChoice | None:
        """The curated image a project's dev environment builds on when it ships on ``ref``: its devel twin
        (the devel image built FROM it: the same framework build plus the toolchain), ``ref`` itself when it
        is a devel image, ``None`` when the plan has no devel image over it (the plain base: the dev stage
        then builds on the production stage)."""
        choice = self.known().get(ref)
        if choice is None:
            return None
        if choice.variant == "devel":
            return choice
        return next((c for c in self.choices if c.variant == "devel" and c.parent_tag == choice.tag), None)


def _major_minor(version: str | None) -> str | None:
    parsed = NvVersion.leading(version)
    return str(parsed.truncate(2)) if parsed else None


def _unique(names: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(names))


def _variant(image: plan_json.PlannedImage) -> str:
    # Older plans may lack `variant`; the tag and the label carry it too.
    variant = image.variant or ImageLabels.from_labels(image.label_dict).variant
    if variant is None:
        parsed = parse_framework_tag(image.tag)
        variant = parsed.variant if parsed else "base"
    return "runtime" if variant == "base" else variant


def from_plan_json(path: Path, *, source: str | None = None) -> Catalog:
    """The choices of a rendered plan (its Dockerfiles need not be there: only tags and coverage count)."""
    plan = plan_json.load(path, check_files=False)
    tags = {image.name: image.tag for image in plan.images}
    choices = tuple(
        CuratedChoice(
            tag=image.tag,
            aliases=image.aliases,
            framework=image.framework.name if image.framework else None,
            framework_version=image.framework.version if image.framework else None,
            python=image.python or ImageLabels.from_labels(image.label_dict).python or "",
            variant=_variant(image),
            cuda=_major_minor(image.cuda_runtime),
            nodes=image.nodes,
            min_driver=ImageLabels.from_labels(image.label_dict).min_driver,
            full_driver=ImageLabels.from_labels(image.label_dict).full_driver,
            sm=ImageLabels.from_labels(image.label_dict).sm,
            parent_tag=tags.get(image.parent) if image.parent else None,
        )
        for image in plan.images
    )
    # Nodes the plan leaves uncovered are fleet too.
    uncovered = (entry.node for entry in plan.uncovered)
    fleet = _unique([*(node for c in choices for node in c.nodes), *uncovered])
    return Catalog(source=source or str(path), choices=choices, fleet=fleet)


def from_policy(path: Path | None, *, source: str | None = None) -> Catalog:
    """The choices of the plan made now from the policy at ``path`` (``None``: the embedded default)."""
    from imagesmith.images.plan import make_plan
    from imagesmith.images.policy import embedded_policy, load_policy
    from imagesmith.matrix import knowledge

    kb = knowledge.load()
    # An explicit path only: `load_policy(None)` would read ./imagesmith.yaml wherever copier runs.
    policy = embedded_policy(kb) if path is None else load_policy(path, kb)
    plan = make_plan(kb, policy)
    tags = {image.name: image.tag for image in plan.images}
    choices = tuple(
        CuratedChoice(
            tag=image.tag,
            aliases=image.aliases,
            framework=image.framework,
            framework_version=image.version,
            python=image.python,
            variant="runtime" if image.variant == "base" else image.variant,
            cuda=str(image.cuda.truncate(2)) if image.cuda else None,
            nodes=image.nodes,
            min_driver=str(image.min_driver) if image.min_driver else None,
            full_driver=str(image.full_driver) if image.full_driver else None,
            sm=parse_sm(image.sm),
            parent_tag=tags.get(image.parent) if image.parent else None,
        )
        for image in plan.images
    )
    fleet = tuple(node.name for node in policy.fleet)
    return Catalog(source=source or (str(path) if path else EMBEDDED), choices=choices, fleet=fleet)


@cache
def embedded_catalog() -> Catalog:
    """The plan of the policy embedded in this imagesmith version (fixed for the process)."""
    return from_policy(None)


def for_template(source: Path | None) -> Catalog:
    """The choices for a template source folder: its plan.json, else its imagesmith.yaml, else the embedded one.

    Cached per source folder and per state of its two files: one copier run renders the choices many
    times, and ``copier update`` renders two template versions from two checkouts in one process.
    """
    if source is None:
        return embedded_catalog()
    return _for_template(str(source), _stamp(source / PLAN_JSON), _stamp(source / POLICY_FILE))


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return (info.st_mtime_ns, info.st_size)


@lru_cache(maxsize=32)
def _for_template(
    source: str, plan_stamp: tuple[int, int] | None, policy_stamp: tuple[int, int] | None
) -> Catalog:
    root = Path(source)
    if plan_stamp is not None:
        return from_plan_json(root / PLAN_JSON, source=f"the template's {PLAN_JSON.as_posix()}")
    if policy_stamp is not None:
        return from_policy(root / POLICY_FILE, source=f"the template's {POLICY_FILE.as_posix()}")
    return embedded_catalog()


def check_template_pin(source: Path | None) -> None:
    """Refuse (``VersionSkew``) to render projects from a team repository pinned to another imagesmith line."""
    if source is None:
        return
    policy_path = source / POLICY_FILE
    _check_pin(str(policy_path), _stamp(policy_path))


@lru_cache(maxsize=32)
def _check_pin(path: str, stamp: tuple[int, int] | None) -> None:
    if stamp is None:
        return
    from imagesmith import __version__
    from imagesmith.contract import requirement
    from imagesmith.images.yamlpos import load_file

    doc = load_file(path)
    # copier renders from a temporary clone: name the file as the team knows it.
    line = doc.where(requirement.KEY).rpartition(":")[2]
    where = f"the team repository's {POLICY_FILE.as_posix()}:{line}"
    requirement.check_mapping(doc.data, installed=__version__, where=where, repository="the team repository")


def curated_choices() -> tuple[CuratedChoice, ...]:
    """Every image of the plan made from the policy embedded in this imagesmith version."""
    return embedded_catalog().choices


def default_image(
    *,
    framework: str | None,
    python: str | None = None,
    variant: str = "runtime",
    catalog: Catalog | None = None,
) -> str:
    """The tag a new project should start FROM: the framework's image that runs on the most fleet nodes.

    Coverage first because a project image that cannot start on part of the fleet is a scheduling trap;
    ties go to the newest CUDA. No framework means the plain base image.
    """
    pool = catalog.choices if catalog else curated_choices()
    choices = [c for c in pool if python is None or c.python == python]
    fw = None if framework in (None, "", "none") else framework
    matches = [c for c in choices if c.framework == fw and c.variant == variant]
    if matches:
        return max(matches, key=coverage_key).tag
    known = sorted({c.framework or "none" for c in pool})
    raise LookupError(f"no curated {variant} image for framework {framework!r} (known: {', '.join(known)})")


def coverage_key(choice: CuratedChoice) -> tuple[int, NvVersion]:
    """Sort key of the default rule: fleet nodes covered, then CUDA version."""
    return (len(choice.nodes), NvVersion.leading(choice.cuda) or NvVersion((0,)))


def python_key(version: str) -> tuple[int, Version | str]:
    """Sort key of Python versions (a PEP 440 version, through ``packaging``); anything else sorts first."""
    try:
        return (1, Version(version))
    except InvalidVersion:
        return (0, version)
