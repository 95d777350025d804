"""Framework specs (``torch==2.4.1+cu124``, ``torch==2.11.0``, ``jax[cuda13]==0.7.2``) resolved to one build."""

from __future__ import annotations

from imagesmith.contract.record import record
from imagesmith.errors import UnknownName, UsageError
from imagesmith.matrix.knowledge import FRAMEWORKS, Knowledge
from imagesmith.matrix.model import FrameworkBuild, FrameworkRelease
from imagesmith.matrix.versions import NvVersion


@record
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


@record
class Pinned:
    """The version a spec pins, as the lookup needs it: its PEP 440 base version and local label."""

    base_version: str
    local: str | None
    major: int
    minor: int


def _word(text: str, extra: str = "") -> bool:
    return bool(text) and all((ch.isascii() and ch.isalnum()) or ch in extra for ch in text)


def _simple(spec: str) -> tuple[str, str | None, str] | None:
    """``name[extra]==version`` read by hand (name ``[A-Za-z0-9][A-Za-z0-9._-]*``, version starting with a
    digit), or None for anything else."""
    head, eq, pinned = spec.partition("==")
    extra = None
    if head.endswith("]") and "[" in head:
        head, _, extra = head[:-1].partition("[")
        if not _word(extra, "._-"):
            return None
    if not (
        eq and _word(head[:1]) and _word(head, "._-") and pinned[:1].isdigit() and _word(pinned, ".+!_-")
    ):
        return None
    return head, extra, pinned


def _pinned(text: str, *, where: str) -> Pinned:
    """A plain ``X.Y[.Z...][+local]`` is read directly; anything else (pre/post/dev releases, epochs)
    goes through ``packaging``, which is the authority on PEP 440."""
    public, plus, local = text.partition("+")
    try:
        release = NvVersion.parse(public)
    except ValueError:
        release = None
    if release is not None and (not plus or _word(local, ".")) and local == local.lower():
        parts = release.parts + (0,) * (2 - len(release.parts))
        return Pinned(
            base_version=str(NvVersion(release.parts)),
            local=local if plus else None,
            major=parts[0],
            minor=parts[1],
        )
    from packaging.version import InvalidVersion, Version

    try:
        version = Version(text)
    except InvalidVersion:
        raise UsageError(f"not a version: {text!r}", where=where) from None
    return Pinned(
        base_version=version.base_version, local=version.local, major=version.major, minor=version.minor
    )


# The form nearly every caller writes: ``torch==2.4.1+cu124`` or ``jax[cuda12]==0.7.2``. Read directly, it
# spares packaging.requirements (~28 ms of imports, a quarter of `matrix check`); anything else goes
# through the full PEP 508 parser, with its error messages.
def parse(spec: str, *, where: str = "--framework") -> tuple[str, Pinned, str | None]:
    """``name==version[+variant]`` or ``name[variant]==version`` -> (framework, version, variant)."""
    simple = _simple(spec.strip())
    if simple is not None:
        name, extra, pinned = simple
        extras = {extra} if extra else set()
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
    version = _pinned(pinned, where=where)
    variant = version.local
    if extras:
        if variant is not None or len(extras) != 1:
            raise UsageError(f"{spec!r}: give the CUDA variant once, as +variant or [variant]", where=where)
        variant = next(iter(extras))
    return framework, version, variant


def find_release(
    kb: Knowledge, framework: str, version: Pinned, *, where: str = "--framework"
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
        from packaging.version import Version

        return str(max(Version(p) for p in release.patches))
    return release.version
