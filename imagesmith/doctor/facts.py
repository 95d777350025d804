"""The facts the doctor collects about a pod; plain frozen data, no behaviour beyond JSON.

Versions are parsed once, here at collection (``nv``, ``cc``, ``kernel_nv``): the rules compare values,
never strings. The parsed fields stay out of the JSON, which shows what the files and NVML said.
"""

from __future__ import annotations

from imagesmith.contract.record import as_dict, field, record

TYPE_CHECKING = False  # mypy treats this name as True
if TYPE_CHECKING:
    from imagesmith.matrix.versions import Capability, NvVersion

# toolkit: a CUDA toolkit under /usr/local/cuda*/ (runfile or container base), not a package we can name.
ORIGINS = ("wheel", "dpkg", "conda", "toolkit", "driver", "compat", "stub", "unknown")

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
    nv: NvVersion | None = None  # ``version`` parsed (not in the JSON)

    def to_json(self) -> dict[str, object]:
        out = as_dict(self)
        del out["nv"]
        out["shadowed"] = list(self.shadowed)
        return out


@record
class GpuFacts:
    index: int
    name: str
    brand: str | None
    capability: str | None
    memory_mib: int | None
    cc: Capability | None = None  # ``capability`` parsed (not in the JSON)


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
    # Why this is a CPU-only build (torch +cpu, jaxlib without a CUDA plugin, tensorflow-cpu), or None.
    cpu_only: str | None = None


@record
class Pick:
    """What ``dlopen(name)`` from the executable picks before anything else is loaded: the copy a program
    that is not the framework (or the framework's own later dlopens by name) gets."""

    name: str
    path: str | None
    via: str


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
    kernel_nv: NvVersion | None = None  # ``kernel_module`` parsed
    picks: tuple[Pick, ...] = ()
    # Device nodes present but not usable (open() refused: a lost device cgroup), with the error.
    device_errors: tuple[str, ...] = ()

    def resolved(self, family: str) -> Library | None:
        for lib in self.libraries:
            if lib.family == family and lib.loaded:
                return lib
        return None

    def family(self, family: str) -> tuple[Library, ...]:
        return tuple(lib for lib in self.libraries if lib.family == family)

    def pick(self, name: str) -> Pick | None:
        return next((p for p in self.picks if p.name == name), None)
