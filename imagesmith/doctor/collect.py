"""Gather the facts of a pod (or of a filesystem under ``--root``): the I/O edge of the doctor.

The loader model is the Python process an application would run: the interpreter as executable, the
frameworks' preloads by absolute path, their extension modules, then the dlopen edges that decide
CUDA (libcudart -> ``libcuda.so.1``, pynvml -> ``libnvidia-ml.so.1``).
"""

from __future__ import annotations

import os
import sys

from imagesmith.doctor import frameworks, origin
from imagesmith.doctor.facts import ENV_VARS, Edge, Facts, Framework, GpuFacts, Library, Pick, ProbeResult
from imagesmith.doctor.loader import elf, fsroot, loaderconf
from imagesmith.doctor.loader.resolver import Edge as ResolvedEdge
from imagesmith.doctor.loader.resolver import Resolver
from imagesmith.matrix.versions import Capability, NvVersion

TYPE_CHECKING = False  # mypy treats this name as True
if TYPE_CHECKING:
    from imagesmith.doctor import probe as probe_mod

KNOWN_DIRS = (
    "/usr/local/nvidia/lib64",
    "/usr/local/nvidia/lib",
    "/usr/local/cuda/lib64",
    "/usr/local/cuda/compat",
    "/usr/local/cuda/lib64/stubs",
    "/usr/lib/wsl/lib",
)
PYTHONS = ("/usr/local/bin/python3", "/usr/bin/python3", "/opt/conda/bin/python3")
BRANDS = {
    0: "Unknown", 1: "Quadro", 2: "Tesla", 3: "NVS", 4: "GRID", 5: "GeForce", 6: "Titan",
    7: "NVIDIA Virtual Applications", 8: "NVIDIA Virtual PC", 9: "NVIDIA vCompute Server",
    10: "NVIDIA RTX Virtual Workstation", 11: "NVIDIA Cloud Gaming", 12: "Quadro RTX", 13: "NVIDIA RTX",
    14: "NVIDIA", 15: "GeForce RTX", 16: "Titan RTX",
}  # fmt: skip


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read(1 << 16)
    except OSError:
        return None


def kernel_module_version(root: str) -> str | None:
    text = _read(fsroot.host_path(root, "/proc/driver/nvidia/version"))
    if not text:
        return None
    # "NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.104.05  Sat Aug 19 ...": the driver's
    # three-digit-branch version is the one token of that shape.
    for token in text.split():
        try:
            version = NvVersion.parse(token)
        except ValueError:
            continue
        if len(version.parts) >= 2 and len(token) > 3 and token[3] == "." and token[0] != "0":
            return token
    return None


def device_nodes(root: str) -> tuple[str, ...]:
    try:
        names = os.listdir(fsroot.host_path(root, "/dev"))
    except OSError:
        return ()
    return tuple(sorted(f"/dev/{n}" for n in names if n.startswith("nvidia")))


def proc_gpu_count(root: str) -> int:
    try:
        return len(os.listdir(fsroot.host_path(root, "/proc/driver/nvidia/gpus")))
    except OSError:
        return 0


def _main_executable(root: str) -> str | None:
    if root == "/":
        return os.path.realpath(sys.executable)
    for candidate in PYTHONS:
        if os.path.isfile(fsroot.host_path(root, candidate)):
            return fsroot.realpath(root, candidate)
    return None


def _model(
    resolver: Resolver, root: str, sites: tuple[str, ...], fws: tuple[Framework, ...]
) -> tuple[ResolvedEdge | None, ResolvedEdge | None]:
    main = resolver.main
    torch = next((f for f in fws if f.name == "torch"), None)
    if torch is not None:
        global_deps = f"{torch.path}/lib/libtorch_global_deps.so"
        if os.path.isfile(fsroot.host_path(root, global_deps)):
            resolver.dlopen(main, global_deps)
        if torch.cuda or resolver.find("libcudart.so") is not None:
            for folder, pattern in frameworks.TORCH_PRELOADS:
                hit = frameworks.nvidia_lib(root, sites, folder, pattern)
                if hit:
                    resolver.dlopen(main, hit)
        ext = sorted(
            n for n in (fsroot.listdir(root, torch.path) or ()) if n.startswith("_C.") and n.endswith(".so")
        )
        if ext:
            resolver.dlopen(main, f"{torch.path}/{ext[0]}")
    if any(f.name == "jax" for f in fws):
        for folder, pattern in frameworks.JAX_PRELOADS:
            hit = frameworks.nvidia_lib(root, sites, folder, pattern)
            if hit:
                resolver.dlopen(main, hit)
    cudart = resolver.find("libcudart.so")
    libcuda = resolver.dlopen(cudart if cudart is not None else main, "libcuda.so.1")
    nvml = resolver.dlopen(main, "libnvidia-ml.so.1")
    return libcuda, nvml


def _inventory_dirs(resolver: Resolver, root: str, sites: tuple[str, ...]) -> list[str]:
    dirs: list[str] = []
    if resolver.config.ld_library_path:
        dirs += [d for d in resolver.config.ld_library_path.replace(";", ":").split(":") if d.startswith("/")]
    dirs += list(resolver.config.system_dirs)
    dirs += list(KNOWN_DIRS)
    base = root.rstrip("/")
    for pattern in ("/usr/local/cuda-*/lib64", "/usr/local/cuda-*/compat", "/usr/local/cuda*/targets/*/lib",
                    "/usr/local/cuda*/targets/*/lib/stubs", "/usr/local/cuda-*/lib64/stubs", "/opt/conda/lib"):  # fmt: skip
        dirs += [h[len(base) :] for h in fsroot.glob(base + pattern)]
    conda = os.environ.get("CONDA_PREFIX")
    if conda and root == "/":
        dirs.append(f"{conda}/lib")
    for site in sites:
        dirs += [h[len(base) :] for h in fsroot.glob(f"{base}{site}/nvidia/*/lib")]
    for key in resolver.cache_keys():
        if origin.family_of(key) is not None:
            dirs += [fsroot.dirname(p) for p in resolver._ld_cache_lookup(key)]
    out: list[str] = []
    for d in dirs:
        if d not in out:
            out.append(d)
    return out


def _libraries(resolver: Resolver, root: str, sites: tuple[str, ...]) -> tuple[Library, ...]:
    owners = origin.OriginIndex(root)
    loaded_edges: dict[str, ResolvedEdge] = {}
    for e in resolver.edges:
        if e.path and e.via != "already_loaded" and not e.error:
            loaded_edges.setdefault(e.path, e)
    seen: set[str] = set()
    out: list[Library] = []

    def add(path: str, edge: ResolvedEdge | None) -> None:
        real = fsroot.realpath(root, path)
        if real in seen:
            return
        family = origin.family_of(os.path.basename(path)) or origin.family_of(os.path.basename(real))
        if family is None:
            return
        seen.add(real)
        soname = os.path.basename(path)
        try:
            info = elf.read_elf(fsroot.host_path(root, path))
            soname = info.soname or soname
        except (OSError, elf.ElfError):
            pass
        owner = owners.owner(path, real)
        out.append(
            Library(
                name=soname,
                path=path,
                realpath=real,
                family=family,
                version=owner.version,
                origin=owner.origin,
                dist=owner.dist,
                loaded=edge is not None,
                via=edge.via if edge else None,
                needed_by=edge.needed_by if edge else None,
                shadowed=edge.shadowed if edge else (),
                nv=NvVersion.leading(owner.version),
            )
        )

    for obj in resolver.objects:
        add(obj.path, loaded_edges.get(obj.path))
    for d in _inventory_dirs(resolver, root, sites):
        for name in sorted(fsroot.listdir(root, d) or ()):
            if origin.family_of(name) is not None:
                add(f"{d.rstrip('/')}/{name}", None)
    return tuple(out)


def _glibc_required(resolver: Resolver, root: str) -> tuple[str | None, str | None]:
    best: tuple[tuple[int, ...], str, str] | None = None
    for obj in resolver.objects:
        try:
            with elf.MappedFile(fsroot.host_path(root, obj.path)) as f:
                needs = elf.version_needs(f.data)
        except (OSError, elf.ElfError):
            continue
        for versions in needs.values():
            for v in versions:
                key = elf.glibc_version(v)
                if key is not None and (best is None or key > best[0]):
                    best = (key, v[6:], obj.path)
    return (best[1], best[2]) if best else (None, None)


# Driver-side libraries are judged by their versions, not by which copy a dlopen picks.
_DRIVER_FAMILIES = ("cuda", "nvidia-ml", "nvidia-ptxjitcompiler", "nvidia-nvvm")


def _picks(resolver: Resolver, libraries: tuple[Library, ...]) -> tuple[Pick, ...]:
    """For every CUDA-family soname on the node, the copy a plain ``dlopen`` from the executable gets."""
    names = sorted(
        {lib.name for lib in libraries if lib.family not in _DRIVER_FAMILIES and ".so." in lib.name}
    )
    out = []  # without an executable (a bare --root tree) the search has no RPATH: still the loader's order
    for name in names:
        edge = resolver.lookup(name)
        out.append(Pick(name=name, path=edge.path if not edge.error else None, via=edge.via))
    return tuple(out)


def _device_errors(root: str) -> tuple[str, ...]:
    """Device nodes that exist but cannot be opened: the container lost its device cgroup rule (what
    'Failed to initialize NVML: Unknown Error' means). Only on the live system: under --root the nodes
    are files of a copied tree."""
    if root != "/":
        return ()
    import stat

    out = []
    for node in device_nodes(root):
        if node in ("/dev/nvidiactl",) or node[len("/dev/nvidia") :].isdigit():
            try:
                if not stat.S_ISCHR(os.stat(node).st_mode):
                    continue  # a stand-in file, not a device: nothing to learn from opening it
            except OSError:
                continue
            try:
                fd = os.open(node, os.O_RDWR)
            except OSError as exc:
                out.append(f"open({node}): {exc.strerror}")
            else:
                os.close(fd)
    return tuple(out)


def _found(edge: ResolvedEdge | None) -> str | None:
    return edge.path if edge is not None and edge.path and not edge.error else None


def start_probe(
    root: str, libcuda: str | None, nvml: str | None, timeout: float
) -> probe_mod.Running | str | None:
    """The forked probe (or why it could not start, or None when no driver library resolves)."""
    if not libcuda and not nvml:
        return None
    # Imported here: a node without a driver never probes.
    from imagesmith.doctor import probe

    try:
        return probe.start(
            fsroot.host_path(root, libcuda) if libcuda else None,
            fsroot.host_path(root, nvml) if nvml else None,
            timeout,
        )
    except OSError as exc:
        return f"probe could not start: {exc}"


def finish_probe(running: probe_mod.Running | str | None) -> ProbeResult:
    if running is None:
        return ProbeResult(ran=False)
    if isinstance(running, str):
        return ProbeResult(ran=False, error=running)
    from imagesmith.doctor import probe

    data, error = probe.finish(running)
    cu = data.get("libcuda", {})
    nv = data.get("nvml", {})
    gpus = []
    raw_gpus = nv.get("gpus", [])
    for g in raw_gpus if isinstance(raw_gpus, list) else []:
        brand = g.get("brand")
        capability = g.get("capability")
        try:
            cc = Capability.parse(capability) if isinstance(capability, str) else None
        except ValueError:
            cc = None
        gpus.append(
            GpuFacts(
                index=int(g.get("index", 0)),
                name=str(g.get("name", "?")),
                brand=BRANDS.get(brand, str(brand)) if isinstance(brand, int) else None,
                capability=capability,
                memory_mib=g.get("memory_mib"),
                cc=cc,
            )
        )

    def _int(v: object) -> int | None:
        return v if isinstance(v, int) else None

    def _str(v: object) -> str | None:
        return v if isinstance(v, str) else None

    return ProbeResult(
        ran=True,
        error=error,
        cu_init=_int(cu.get("cu_init")),
        cu_driver_version=_int(cu.get("cu_driver_version")),
        libcuda_error=_str(cu.get("libcuda_error")),
        nvml_driver=_str(nv.get("nvml_driver")),
        nvml_cuda=_int(nv.get("nvml_cuda")),
        nvml_error=_str(nv.get("nvml_error")),
        gpus=tuple(gpus),
    )


def _edge(e: ResolvedEdge | None) -> Edge | None:
    if e is None:
        return None
    return Edge(
        name=e.name, needed_by=e.needed_by, path=e.path, via=e.via, shadowed=e.shadowed, searched=e.searched,
        error=e.error,
    )  # fmt: skip


class Collecting:
    """Facts being gathered, the probe child still running: ``finish`` waits for it and returns the facts.

    The doctor does its own work in between (imports the rules, loads the matrix) while the child loads
    the driver libraries: on a GPU node that child's start (fork, then ctypes) is the longest single wait.
    """

    __slots__ = (
        "_conf", "_config", "_env", "_fws", "_glibc_by", "_glibc_required", "_kernel", "_libcuda",
        "_libraries", "_nvml", "_picks", "_root", "_running",
    )  # fmt: skip

    def __init__(self, *, root: str, probe: bool, probe_timeout: float) -> None:
        self._root = root
        self._env = {k: os.environ.get(k) for k in ENV_VARS}
        config = self._config = loaderconf.detect(root=root)
        resolver = Resolver(config)
        main = _main_executable(root)
        if main is not None:
            try:  # noqa: SIM105 - contextlib.suppress would cost the doctor ~3 ms of imports
                resolver.load_root(main)
            except (OSError, elf.ElfError):
                pass  # an executable we cannot read: the model starts from nothing, as with a bare --root
        # The probe starts now, on the copies a dlopen from the executable finds, and runs in a forked child
        # while the model is built; in the rare case the model resolves another copy (libcuda found through
        # libcudart's RUNPATH), that guess is cancelled and the probe restarted on the modelled copies.
        guess = (_found(resolver.lookup("libcuda.so.1")), _found(resolver.lookup("libnvidia-ml.so.1")))
        running = start_probe(root, *guess, probe_timeout) if probe else None
        try:
            sites = frameworks.site_packages(root, sys.path if root == "/" else None)
            fws = frameworks.discover(root, sites)
            libcuda_edge, nvml_edge = _model(resolver, root, sites, fws)
            modelled = (_found(libcuda_edge), _found(nvml_edge))
            if probe and modelled != guess:
                _cancel(running)
                running = None  # cancelled: the handler below must not cancel it twice
                running = start_probe(root, *modelled, probe_timeout)
            libraries = _libraries(resolver, root, sites)
            self._glibc_required, self._glibc_by = _glibc_required(resolver, root)
            self._libraries = libraries
            self._picks = _picks(resolver, libraries)
            self._kernel = kernel_module_version(root)
            self._conf = tuple(sorted(fsroot.listdir(root, "/etc/ld.so.conf.d") or ()))
            self._libcuda, self._nvml, self._fws = _edge(libcuda_edge), _edge(nvml_edge), fws
        except BaseException:
            _cancel(running)
            raise
        self._running = running

    def cancel(self) -> None:
        """Give up: the probe child (if any) is killed and reaped."""
        _cancel(self._running)
        self._running = None

    def finish(self) -> Facts:
        root, config, kernel = self._root, self._config, self._kernel
        result = finish_probe(self._running)
        self._running = None
        llp = (
            tuple((config.ld_library_path or "").replace(";", ":").split(":"))
            if config.ld_library_path
            else ()
        )
        return Facts(
            root=root,
            env=self._env,
            ld_library_path=llp,
            device_nodes=device_nodes(root),
            proc_gpus=proc_gpu_count(root),
            kernel_module=kernel,
            kernel_nv=NvVersion.leading(kernel),
            picks=self._picks,
            device_errors=_device_errors(root),
            libraries=self._libraries,
            libcuda=self._libcuda,
            nvml=self._nvml,
            probe=result,
            frameworks=self._fws,
            glibc_version=config.glibc_version,
            glibc_required=self._glibc_required,
            glibc_required_by=self._glibc_by,
            ld_conf_files=self._conf,
            loader_system_dirs=config.system_dirs,
        )


def _cancel(running: probe_mod.Running | str | None) -> None:
    if running is not None and not isinstance(running, str):
        from imagesmith.doctor import probe as probe_module

        probe_module.cancel(running)


def start(*, root: str = "/", probe: bool = True, probe_timeout: float = 10.0) -> Collecting:
    """Begin gathering the facts; ``finish()`` on the result completes them (``collect`` is both)."""
    return Collecting(root=root, probe=probe, probe_timeout=probe_timeout)


def collect(*, root: str = "/", probe: bool = True, probe_timeout: float = 10.0) -> Facts:
    return start(root=root, probe=probe, probe_timeout=probe_timeout).finish()
