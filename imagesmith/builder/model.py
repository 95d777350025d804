"""Facts of a build run: the options it was given and what happened to each image."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from imagesmith.builder.smoke import TestResult
from imagesmith.contract.plan_json import Plan

BUILT = "built"
UNCHANGED = "unchanged"
FAILED = "failed"
SKIPPED = "skipped"


@dataclass(frozen=True, kw_only=True)
class BuildOptions:
    plan: Plan
    selected: tuple[str, ...]
    jobs: int = 2
    no_cache: bool = False
    push: bool = False
    output_dir: Path
    base_images: tuple[tuple[str, str], ...] = ()
    pip_index_url: str | None = None
    ca_cert: bytes | None = None
    imagesmith_wheel: Path | None = None
    # Parents outside ``selected`` come from the registry by digest instead of the local engine.
    parents_from_registry: bool = False
    # Compressed sizes cost a gzip pass over every new layer (minutes for a 5 GB framework image);
    # a push reads them from the registry instead.
    measure_sizes: bool = True

    def base_ref(self, name: str, default: str | None) -> str | None:
        """An OS base's ref: ``--base-image NAME=REF`` first, then ``os=REF``, then the plan's."""
        overrides = dict(self.base_images)
        return overrides.get(name) or overrides.get("os") or default


@dataclass(frozen=True, kw_only=True)
class Package:
    name: str
    version: str
    size: int


@dataclass(frozen=True, kw_only=True)
class SbomFile:
    """The image's CycloneDX SBOM, copied out of the image (``inside``) next to the manifest (``path``)."""

    path: Path
    inside: str
    components: int
    sha256: str


@dataclass(frozen=True, kw_only=True)
class ImageResult:
    name: str
    tag: str
    aliases: tuple[str, ...]
    parent: str | None
    base_ref: str | None
    status: str
    seconds: float
    log_path: Path
    image_id: str | None = None
    parent_id: str | None = None
    input_hash: str | None = None
    size: int | None = None
    parent_size: int | None = None
    compressed_size: int | None = None
    labels: dict[str, str] = field(default_factory=dict)
    tests: tuple[TestResult, ...] = ()
    tests_cached: bool = False
    packages: tuple[Package, ...] = ()
    pushed: tuple[str, ...] = ()
    repo_digests: tuple[str, ...] = ()
    failed_step: str | None = None
    error: str | None = None
    log_tail: tuple[str, ...] = ()
    skipped_because: str | None = None
    sbom: SbomFile | None = None

    @property
    def digest(self) -> str | None:
        """The registry manifest digest of the immutable tag (known once pushed or read from the registry)."""
        return self.repo_digests[0].rsplit("@", 1)[1] if self.repo_digests else None

    @property
    def ok(self) -> bool:
        return self.status in (BUILT, UNCHANGED)

    @property
    def packages_size(self) -> int:
        return sum(p.size for p in self.packages)
