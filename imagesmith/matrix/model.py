"""The compatibility facts as frozen records. Every record keeps where it came from and how sure we are."""

from __future__ import annotations

from dataclasses import dataclass

from imagesmith.matrix.versions import NvVersion

CONFIDENCES = ("high", "medium", "low", "artifact")
SEGMENTS = ("datacenter", "workstation", "consumer", "embedded")
FORWARD_COMPAT = ("eligible", "ineligible", "unknown")


@dataclass(frozen=True, kw_only=True)
class Provenance:
    file: str
    line: int | None
    source: tuple[str, ...]  # full citations
    confidence: str

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


@dataclass(frozen=True, kw_only=True)
class CudaFamily:
    major: int
    minor_version_compatibility: bool
    mvc_min_driver: NvVersion | None
    libcudart_soname: str
    provenance: Provenance


@dataclass(frozen=True, kw_only=True)
class Toolkit:
    version: NvVersion
    released: str | None
    min_driver: NvVersion | None
    provenance: Provenance


@dataclass(frozen=True, kw_only=True)
class NvccTargets:
    since: NvVersion
    capabilities: tuple[NvVersion, ...]
    provenance: Provenance


@dataclass(frozen=True, kw_only=True)
class DriverBranch:
    branch: int
    max_cuda: NvVersion
    lifecycle: str | None
    provenance: Provenance


@dataclass(frozen=True, kw_only=True)
class CompatPackage:
    package: str
    cuda: NvVersion
    supported_branches: tuple[int, ...]
    provenance: Provenance


@dataclass(frozen=True, kw_only=True)
class Architecture:
    name: str
    capabilities: tuple[NvVersion, ...]
    last_driver_branch: int | None
    first_cuda: NvVersion | None
    provenance: Provenance


@dataclass(frozen=True, kw_only=True)
class Gpu:
    name: str
    aliases: tuple[str, ...]
    capability: NvVersion
    architecture: str
    memory_gb: float | None
    segment: str
    forward_compat: str
    min_cuda: NvVersion | None
    provenance: Provenance | None  # None for a GPU named only by its compute capability


@dataclass(frozen=True, kw_only=True)
class FrameworkRelease:
    framework: str
    version: str
    patches: tuple[str, ...]
    python: str  # PEP 440 specifier text
    pypi_default: str | None
    provenance: Provenance


@dataclass(frozen=True, kw_only=True)
class FrameworkBuild:
    framework: str
    release: str
    variant: str
    cuda: NvVersion
    cudnn: NvVersion | None
    sass: tuple[NvVersion, ...]
    ptx: tuple[NvVersion, ...]
    role: str | None
    provenance: Provenance

    @property
    def sm_list(self) -> str:
        """``sm_75,sm_80,compute_120``: the label form of what the build carries."""
        items = [c.sm for c in self.sass] + [f"compute_{c.major}{c.minor}" for c in self.ptx]
        return ",".join(items)


@dataclass(frozen=True, kw_only=True)
class CudnnRelease:
    version: NvVersion
    cuda_majors: tuple[int, ...]
    capabilities: tuple[NvVersion, ...]
    min_driver: NvVersion | None
    provenance: Provenance
