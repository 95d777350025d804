"""The harvest, orchestrated: which artifacts to read for each spec, and the staleness check."""

from __future__ import annotations

import re
from dataclasses import dataclass

from imagesmith.errors import UsageError
from imagesmith.harvest import deep, facts, nvcc
from imagesmith.harvest.pypi import Artifact, Index
from imagesmith.matrix.knowledge import Knowledge

# What `harvest --check` watches: a release on the index that the data does not know is stale data.
WATCHED = ("torch", "tensorflow", "jax", "jaxlib", "jax-cuda12-plugin", "jax-cuda13-plugin")
DEFAULT_SPECS = ("torch", "tensorflow", "jax-cuda12-plugin", "jax-cuda13-plugin")


@dataclass(frozen=True, kw_only=True)
class Spec:
    project: str
    version: str | None  # None: the newest final release

    @classmethod
    def parse(cls, text: str) -> Spec:
        match = re.fullmatch(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:==\s*([0-9][0-9A-Za-z.+]*))?\s*", text)
        if match is None:
            raise UsageError(f"expected PROJECT or PROJECT==VERSION, got {text!r}", where="SPEC")
        return cls(project=match.group(1).lower(), version=match.group(2))


def _newest_final(index: Index, project: str) -> str:
    from packaging.version import Version

    finals = [v for v in index.versions(project) if not Version(v).is_prerelease]
    if not finals:
        raise UsageError(f"{project} has no final release on the index", where=index.base)
    return finals[-1]


def linux_wheel(index: Index, project: str, version: str) -> Artifact:
    """The Linux x86_64 wheel of the newest CPython the release ships (the one the images install)."""
    wheels = [
        a
        for a in index.artifacts(project, version)
        if a.is_wheel and any("linux" in t and "x86_64" in t for t in a.platform_tags)
    ]
    if not wheels:
        raise UsageError(f"{project} {version} has no Linux x86_64 wheel", where=index.base)
    return max(
        wheels, key=lambda a: (a.python_tag.startswith("cp"), int(re.sub(r"\D", "", a.python_tag) or 0))
    )


def harvest(index: Index, spec: Spec, *, deep_scan: bool) -> tuple[facts.Fact, ...]:
    if spec.project == "nvcc":
        if spec.version is None:
            raise UsageError("nvcc needs a CUDA release: nvcc==13.0", where="SPEC")
        return nvcc.harvest(index, spec.version)
    version = spec.version or _newest_final(index, spec.project)
    artifact = linux_wheel(index, spec.project, version)
    subject = f"{spec.project} {version}"
    provenance = facts.Provenance(artifact=artifact.filename, sha256=artifact.sha256)
    found = facts.from_metadata(subject, index.metadata(artifact), provenance)
    artifacts = index.artifacts(spec.project, version)
    platforms = sorted({t for a in artifacts for t in a.platform_tags})
    found += (facts.Fact(subject=subject, key="platforms", value=" ".join(platforms), provenance=provenance),)
    # The CPythons it really ships Linux x86_64 wheels for: Requires-Python is often looser (torch 2.5 says
    # >=3.8.0 and has no cp38 wheel), and the images install wheels.
    pythons = facts.cpythons(
        a.python_tag for a in artifacts if any("linux" in t and "x86_64" in t for t in a.platform_tags)
    )
    if pythons:
        found += (facts.Fact(subject=subject, key="pythons", value=" ".join(pythons), provenance=provenance),)
    if deep_scan:
        found += deep.harvest(index, artifact, subject)
    return found


@dataclass(frozen=True, kw_only=True)
class Stale:
    project: str
    newest_known: str | None
    unknown: tuple[str, ...]  # final releases on the index newer than the newest the data knows


def known_versions(kb: Knowledge, project: str) -> tuple[str, ...]:
    framework = {"jaxlib": "jax", "jax-cuda12-plugin": "jax", "jax-cuda13-plugin": "jax"}.get(
        project, project
    )
    name = kb.framework_name(framework)
    if name is None:
        return ()
    out: list[str] = []
    for release in kb.releases(name):
        out += [release.version, *release.patches]
    return tuple(out)


def staleness(index: Index, kb: Knowledge, projects: tuple[str, ...] = WATCHED) -> tuple[Stale, ...]:
    from packaging.version import InvalidVersion, Version

    out = []
    for project in projects:
        known = []
        for text in known_versions(kb, project):
            try:
                known.append(Version(text))
            except InvalidVersion:
                continue
        newest = max(known) if known else None
        finals = [Version(v) for v in index.versions(project) if not Version(v).is_prerelease]
        unknown = tuple(str(v) for v in finals if newest is None or v > newest)
        out.append(Stale(project=project, newest_known=str(newest) if newest else None, unknown=unknown))
    return tuple(out)
