"""The compatibility facts as frozen records. Every record keeps where it came from and how sure we are.

Records, not dataclasses: ``contract.record`` gives the same frozen, keyword-only classes (type checkers
see a dataclass transform) without importing ``dataclasses``/``inspect``, ~17 ms of a ~35 ms
``matrix check`` budget on a slow machine, and the doctor loads these too."""

from __future__ import annotations

from imagesmith.contract.record import record
from imagesmith.matrix.versions import NvVersion

CONFIDENCES = ("high", "medium", "low", "artifact")
SEGMENTS = ("datacenter", "workstation", "consumer", "embedded")
FORWARD_COMPAT = ("eligible", "ineligible", "unknown")


@record
class Provenance:
    file: str
    line: int | None
    source: tuple[str, ...]  # full citations
    confidence: str

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


@record
class CudaFamily:
    major: int
    minor_version_compatibility: bool
    mvc_min_driver: NvVersion | None
    libcudart_soname: str
    provenance: Provenance


@record
class Toolkit:
    version: NvVersion
    released: str | None
    min_driver: NvVersion | None
    provenance: Provenance


@record
class NvccTargets:
    since: NvVersion
    capabilities: tuple[NvVersion, ...]
    provenance: Provenance


@record
class DriverBranch:
    branch: int
    max_cuda: NvVersion
    lifecycle: str | None
    provenance: Provenance


@record
class CompatPackage:
    package: str
    cuda: NvVersion
    supported_branches: tuple[int, ...]
    provenance: Provenance


@record
class Architecture:
    name: str
    capabilities: tuple[NvVersion, ...]
    last_driver_branch: int | None
    first_cuda: NvVersion | None
    provenance: Provenance


@record
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


@record
class FrameworkRelease:
    framework: str
    version: str
    patches: tuple[str, ...]
    python: str  # PEP 440 specifier text
    # CPythons with wheels that the project calls experimental: shipped, deliberately left out of `python`.
    python_experimental: tuple[str, ...]
    pypi_default: str | None
    provenance: Provenance


@record
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


@record
class CudnnRelease:
    version: NvVersion
    cuda_majors: tuple[int, ...]
    capabilities: tuple[NvVersion, ...]
    min_driver: NvVersion | None
    provenance: Provenance
