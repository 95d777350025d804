"""Framework specs (``torch==2.4.1+cu124``, ``torch==2.11.0``, ``jax[cuda13]==0.7.2``) resolved to one build."""

from __future__ import annotations

import re
from dataclasses import dataclass

from packaging.version import InvalidVersion, Version

from imagesmith.errors import UnknownName, UsageError
from imagesmith.matrix.knowledge import FRAMEWORKS, Knowledge
from imagesmith.matrix.model import FrameworkBuild, FrameworkRelease
from imagesmith.matrix.versions import NvVersion


@dataclass(frozen=True, kw_only=True)
class ResolvedBuild:
    """One installable framework build: the release line, the exact version and the CUDA variant."""

    framework: str
    version: str
    release: FrameworkRelease
    build: FrameworkBuild
    is_pypi_default: bool

    @property
    def variant(self) -> str:
        return self.build.variant

    @property
    def cuda(self) -> NvVersion:
        return self.build.cuda

    @property
    def cudnn(self) -> NvVersion | None:
        return self.build.cudnn

    @property
    def sass(self) -> tuple[NvVersion, ...]:
        return self.build.sass

    @property
    def ptx(self) -> tuple[NvVersion, ...]:
        return self.build.ptx

    @property
    def python(self) -> str:
        return self.release.python

    @property
    def spec(self) -> str:
        return f"{self.framework}=={self.version}+{self.variant}"


def _closest(value: str, options: list[str]) -> list[str]:
    import difflib  # only on the way to an error

    return difflib.get_close_matches(value, options, n=3, cutoff=0.3) or options[-3:]


# The form nearly every caller writes: ``torch==2.4.1+cu124`` or ``jax[cuda12]==0.7.2``. Read directly, it
# spares packaging.requirements (~28 ms of imports, a quarter of `matrix check`); anything else goes
# through the full PEP 508 parser, with its error messages.
_SIMPLE = re.compile(
    r"(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?:\[(?P<extra>[A-Za-z0-9._-]+)\])?==(?P<version>[0-9][0-9A-Za-z.+!_-]*)"
)


def parse(spec: str, *, where: str = "--framework") -> tuple[str, Version, str | None]:
    """``name==version[+variant]`` or ``name[variant]==version`` -> (framework, version, variant)."""
    simple = _SIMPLE.fullmatch(spec.strip())
    if simple is not None:
        name, extras, pinned = (
            simple["name"],
            {simple["extra"]} if simple["extra"] else set(),
            simple["version"],
        )
    else:
        from packaging.requirements import InvalidRequirement, Requirement

        try:
            req = Requirement(spec)
        except InvalidRequirement as exc:
            raise UsageError(f"not a requirement spec: {spec!r} ({exc})", where=where) from None
        name, extras = req.name, set(req.extras)
        pins = [s for s in req.specifier if s.operator in ("==", "===")]
        framework = Knowledge.framework_name(name)
        if framework is not None and (len(pins) != 1 or len(req.specifier) != 1):
            raise UsageError(f"{spec!r} must pin one exact version, like {framework}==X.Y.Z", where=where)
        pinned = pins[0].version if pins else ""
    framework = Knowledge.framework_name(name)
    if framework is None:
        raise UnknownName("framework", name, list(FRAMEWORKS), where=where)
    try:
        version = Version(pinned)
    except InvalidVersion:
        raise UsageError(f"not a version: {pinned!r}", where=where) from None
    variant = version.local
    if extras:
        if variant is not None or len(extras) != 1:
            raise UsageError(f"{spec!r}: give the CUDA variant once, as +variant or [variant]", where=where)
        variant = next(iter(extras))
    return framework, version, variant


def find_release(
    kb: Knowledge, framework: str, version: Version, *, where: str = "--framework"
) -> FrameworkRelease:
    releases = kb.releases(framework)
    base = version.base_version
    for release in releases:
        if release.version == base or base in release.patches:
            return release
    line = f"{version.major}.{version.minor}"
    for release in releases:
        if release.version == line and not release.patches:
            return release
    known = [p for r in releases for p in (r.patches or (r.version,))]
    raise UnknownName(f"{framework} version", base, _closest(base, known), where=where)


def resolve(kb: Knowledge, spec: str, *, where: str = "--framework") -> ResolvedBuild:
    framework, version, variant = parse(spec, where=where)
    release = find_release(kb, framework, version, where=where)
    builds = [b for b in kb.builds(framework) if b.release == release.version]
    if not builds:
        raise UnknownName(f"{framework} {release.version} CUDA build", spec, [], where=where)
    if variant is None:
        if release.pypi_default is not None:
            variant = release.pypi_default
        elif len(builds) == 1:
            variant = builds[0].variant
        else:
            names = [f"{framework}=={version.base_version}+{b.variant}" for b in builds]
            raise UsageError(f"{spec!r} has several CUDA builds; name one: {', '.join(names)}", where=where)
    matches = [b for b in builds if b.variant == variant]
    if not matches:
        raise UnknownName(
            f"{framework} {release.version} build", variant, [b.variant for b in builds], where=where
        )
    return ResolvedBuild(
        framework=framework,
        version=version.base_version,
        release=release,
        build=matches[0],
        is_pypi_default=release.pypi_default == variant,
    )


def latest_version(release: FrameworkRelease) -> str:
    """The newest known patch of a release line."""
    if release.patches:
        return str(max(Version(p) for p in release.patches))
    return release.version
