"""The facts the doctor collects about a pod; plain frozen data, no behaviour beyond JSON."""

from __future__ import annotations

from imagesmith.contract.record import as_dict, field, record

ORIGINS = ("wheel", "dpkg", "conda", "driver", "compat", "stub", "unknown")

ENV_VARS = (
    "LD_LIBRARY_PATH",
    "LD_PRELOAD",
    "NVIDIA_VISIBLE_DEVICES",
    "NVIDIA_DRIVER_CAPABILITIES",
    "NVIDIA_REQUIRE_CUDA",
    "CUDA_VISIBLE_DEVICES",
    "CONDA_PREFIX",
)


@record
class Library:
    """One CUDA-family library file: where it is, what it is, and whether the loader picks it."""

    name: str
    path: str
    realpath: str
    family: str
    version: str | None
    origin: str
    dist: str | None = None
    loaded: bool = False
    via: str | None = None
    needed_by: str | None = None
    shadowed: tuple[str, ...] = ()

    def to_json(self) -> dict[str, object]:
        out = as_dict(self)
        out["shadowed"] = list(self.shadowed)
        return out


@record
class GpuFacts:
    index: int
    name: str
    brand: str | None
    capability: str | None
    memory_mib: int | None


@record
class ProbeResult:
    """What the subprocess saw when it loaded the resolved libcuda / libnvidia-ml."""

    ran: bool
    error: str | None = None
    cu_init: int | None = None
    cu_driver_version: int | None = None
    libcuda_error: str | None = None
    nvml_driver: str | None = None
    nvml_cuda: int | None = None
    nvml_error: str | None = None
    gpus: tuple[GpuFacts, ...] = ()


@record
class Edge:
    """A loader decision worth showing (the dlopen of libcuda / NVML, a preload)."""

    name: str
    needed_by: str | None
    path: str | None
    via: str
    shadowed: tuple[str, ...] = ()
    searched: tuple[str, ...] = ()
    error: str | None = None


@record
class Framework:
    name: str
    version: str
    cuda: str | None
    path: str
    pins: dict[str, str] = field(default_factory=dict)
    sass: tuple[str, ...] = ()
    ptx: tuple[str, ...] = ()
    arch_source: str | None = None


@record
class Facts:
    root: str
    env: dict[str, str | None]
    ld_library_path: tuple[str, ...]
    device_nodes: tuple[str, ...]
    proc_gpus: int
    kernel_module: str | None
    libraries: tuple[Library, ...]
    libcuda: Edge | None
    nvml: Edge | None
    probe: ProbeResult
    frameworks: tuple[Framework, ...]
    glibc_version: str | None
    glibc_required: str | None
    glibc_required_by: str | None
    ld_conf_files: tuple[str, ...]
    loader_system_dirs: tuple[str, ...]

    def resolved(self, family: str) -> Library | None:
        for lib in self.libraries:
            if lib.family == family and lib.loaded:
                return lib
        return None

    def family(self, family: str) -> tuple[Library, ...]:
        return tuple(lib for lib in self.libraries if lib.family == family)
