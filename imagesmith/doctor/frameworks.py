"""Installed frameworks, read from files (never imported), and how they preload CUDA libraries."""

from __future__ import annotations

import os

from imagesmith.doctor.facts import Framework
from imagesmith.doctor.loader import fsroot

# torch/__init__.py (2.13) _preload_cuda_deps order: (folder under nvidia/, file glob).
TORCH_PRELOADS: tuple[tuple[str, str], ...] = (
    ("cublas", "libcublasLt.so.*[0-9]"),
    ("cublas", "libcublas.so.*[0-9]"),
    ("cudnn", "libcudnn.so.*[0-9]"),
    ("cuda_nvrtc", "libnvrtc.so.*[0-9]"),
    ("cuda_nvrtc", "libnvrtc-builtins.so.*[0-9]"),
    ("cuda_runtime", "libcudart.so.*[0-9]"),
    ("cuda_cupti", "libcupti.so.*[0-9]"),
    ("cufft", "libcufft.so.*[0-9]"),
    ("curand", "libcurand.so.*[0-9]"),
    ("nvjitlink", "libnvJitLink.so.*[0-9]"),
    ("cusparse", "libcusparse.so.*[0-9]"),
    ("cusparselt", "libcusparseLt.so.*[0-9]"),
    ("cusolver", "libcusolver.so.*[0-9]"),
    ("nccl", "libnccl.so.*[0-9]"),
    ("nvshmem", "libnvshmem_host.so.*[0-9]"),
    ("cufile", "libcufile.so.*[0-9]"),
)
# jax_plugins/cuda/__init__.py _load_nvidia_libraries.
JAX_PRELOADS: tuple[tuple[str, str], ...] = (
    ("cuda_runtime", "libcudart.so.*[0-9]"),
    ("cublas", "libcublasLt.so.*[0-9]"),
    ("cublas", "libcublas.so.*[0-9]"),
    ("cufft", "libcufft.so.*[0-9]"),
    ("cusolver", "libcusolver.so.*[0-9]"),
    ("cusparse", "libcusparse.so.*[0-9]"),
    ("cudnn", "libcudnn.so.*[0-9]"),
    ("nvjitlink", "libnvJitLink.so.*[0-9]"),
    ("nccl", "libnccl.so.*[0-9]"),
)
_CUDA_ARCH_LIBS = ("libtorch_cuda.so", "libc10_cuda.so")


def site_packages(root: str, sys_path: list[str] | None) -> tuple[str, ...]:
    """Candidate site-packages directories (root-relative), the running interpreter's first."""
    found: list[str] = []
    if root == "/" and sys_path is not None:
        found += [p for p in sys_path if p.endswith(("site-packages", "dist-packages")) and os.path.isdir(p)]
    base = root.rstrip("/")
    patterns = (
        "/usr/lib/python3*/site-packages",
        "/usr/lib/python3/dist-packages",
        "/usr/local/lib/python3*/site-packages",
        "/usr/local/lib/python3*/dist-packages",
        "/opt/conda/lib/python3*/site-packages",
        "/opt/*/lib/python3*/site-packages",
        "/venv/lib/python3*/site-packages",
        "/app/.venv/lib/python3*/site-packages",
    )
    conda = os.environ.get("CONDA_PREFIX")
    extra = (f"{conda}/lib/python3*/site-packages",) if conda and root == "/" else ()
    for pattern in patterns + extra:
        for hit in fsroot.glob(base + pattern):
            rel = hit[len(base) :] or "/"
            if rel not in found and os.path.isdir(hit):
                found.append(rel)
    return tuple(found)


def _read(path: str, limit: int = 1 << 20) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read(limit)
    except OSError:
        return None


def _dist_info(host_site: str, prefix: str) -> tuple[str, str] | None:
    try:
        for entry in os.listdir(host_site):
            if entry.endswith(".dist-info") and entry.split("-", 1)[0].lower() == prefix:
                return entry, entry[: -len(".dist-info")].split("-", 1)[1]
    except OSError:
        return None
    return None


def _pins(host_site: str, dist_dir: str | None) -> dict[str, str]:
    if dist_dir is None:
        return {}
    text = _read(f"{host_site}/{dist_dir}/METADATA") or ""
    pins: dict[str, str] = {}
    for line in text.splitlines():
        pin = _nvidia_pin(line)
        if pin is not None:
            pins[pin[0]] = pin[1]
    return pins


_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


def _nvidia_pin(line: str) -> tuple[str, str] | None:
    """``Requires-Dist: nvidia-cudnn-cu12==9.1.0.70; platform_system == "Linux"`` -> (name, version): the
    exact pins of NVIDIA's wheels, read by hand (``re`` costs the full doctor ~4 ms)."""
    if not line.startswith("Requires-Dist:"):
        return None
    rest = line[len("Requires-Dist:") :].lstrip()
    end = 0
    while end < len(rest) and rest[end] in _NAME_CHARS:
        end += 1
    name, rest = rest[:end], rest[end:].lstrip()
    if not name.startswith("nvidia-") or not rest.startswith("=="):
        return None
    rest = rest[2:].lstrip()
    end = 0
    while end < len(rest) and (rest[end].isdigit() or (rest[end] == "." and end > 0)):
        end += 1
    if end == 0:
        return None
    return name.lower().replace("_", "-"), rest[:end]


def _assigned(text: str, variable: str) -> str | None:
    """The quoted value of ``variable = '...'`` (or ``variable: T = '...'``) at the start of a line."""
    for line in text.splitlines():
        if not line.startswith(variable) or line[len(variable) : len(variable) + 1] not in (" ", ":", "="):
            continue
        _, eq, value = line.partition("=")
        value = value.strip()
        if eq and value[:1] in ("'", '"'):
            end = min((i for i in (value.find("'", 1), value.find('"', 1)) if i > 0), default=-1)
            if end > 1:
                return value[1:end]
    return None


def _arch_flags(paths: list[str]) -> tuple[tuple[str, ...], tuple[str, ...], str | None]:
    from imagesmith.doctor import fatbin  # only when a CUDA torch is installed

    sass: set[int] = set()
    ptx: set[int] = set()
    used = None
    for host in paths:
        s, p = fatbin.scan(host)
        if s or p:
            used = used or host
        sass.update(s)
        ptx.update(p)
    return (
        tuple(f"{a // 10}.{a % 10}" for a in sorted(sass)),
        tuple(f"{a // 10}.{a % 10}" for a in sorted(ptx)),
        used,
    )


def _torch(root: str, site: str) -> Framework | None:
    host_site = fsroot.host_path(root, site)
    text = _read(f"{host_site}/torch/version.py")
    if text is None:
        return None
    version = _assigned(text, "__version__")
    cuda = _assigned(text, "cuda")
    dist = _dist_info(host_site, "torch")
    libdir = f"{host_site}/torch/lib"
    libs = [f"{libdir}/{n}" for n in _CUDA_ARCH_LIBS if os.path.isfile(f"{libdir}/{n}")]
    sass, ptx, used = _arch_flags(libs) if cuda else ((), (), None)
    pins = _pins(host_site, dist[0] if dist else None)
    text_version = version or (dist[1] if dist else "?")
    cpu_only = None
    if text_version.endswith("+cpu"):
        cpu_only = f"torch {text_version} is the CPU build (+cpu)"
    elif cuda is None and not libs and not any(p.startswith("nvidia-") for p in pins):
        cpu_only = (
            f"torch {text_version} has no CUDA support (torch.version.cuda is None, no libtorch_cuda.so)"
        )
    return Framework(
        name="torch",
        version=text_version,
        cuda=cuda,
        path=f"{site}/torch",
        pins=pins,
        sass=sass,
        ptx=ptx,
        arch_source=used[len(root.rstrip("/")) :] if used and root != "/" else used,
        cpu_only=cpu_only,
    )


def _simple(root: str, site: str, package: str, dist_prefix: str) -> Framework | None:
    host_site = fsroot.host_path(root, site)
    if not os.path.isdir(f"{host_site}/{package}"):
        return None
    dist = _dist_info(host_site, dist_prefix)
    if dist is None and dist_prefix != package:
        return None  # a variant distribution (tensorflow-cpu) that is not the one installed
    cuda = None
    pins = _pins(host_site, dist[0] if dist else None)
    for pin in pins:
        if pin.startswith("nvidia-cuda-runtime-cu") and pin[len("nvidia-cuda-runtime-cu") :].isdigit():
            from imagesmith.matrix.versions import NvVersion

            # The runtime wheel's version is the CUDA release it belongs to: 12.4.127 is CUDA 12.4.
            version = NvVersion.leading(pins[pin])
            cuda = str(version.truncate(2)) if version else None
    dist_version = dist[1] if dist else "?"
    return Framework(
        name=package,
        version=dist_version,
        cuda=cuda,
        path=f"{site}/{package}",
        pins=pins,
        cpu_only=_cpu_only(host_site, package, dist_version),
    )


def _cpu_only(host_site: str, package: str, version: str) -> str | None:
    """Why an installed JAX or TensorFlow cannot use a GPU, read from what is installed; None if it can."""
    if package == "tensorflow":
        cpu = _dist_info(host_site, "tensorflow_cpu")
        return f"tensorflow-cpu {cpu[1]} is the CPU-only TensorFlow" if cpu else None
    if package == "jax":
        # Since jaxlib 0.4.26 CUDA comes only from the plugin wheels (jax-cuda12-plugin, jax-cuda13-plugin);
        # older jaxlib CUDA wheels say so in their local version (0.4.25+cuda12.cudnn89).
        plugins = [p for p in ("jax_cuda12_plugin", "jax_cuda13_plugin") if _dist_info(host_site, p)]
        plugins += [p for p in ("xla_cuda12", "xla_cuda13") if os.path.isdir(f"{host_site}/jax_plugins/{p}")]
        jaxlib = _dist_info(host_site, "jaxlib")
        if plugins or (jaxlib and "+cuda" in jaxlib[1]):
            return None
        return f"jax {version} with jaxlib {jaxlib[1] if jaxlib else '?'} and no CUDA plugin (jax-cuda12-plugin / jax-cuda13-plugin)"
    return None


def discover(root: str, sites: tuple[str, ...]) -> tuple[Framework, ...]:
    found: list[Framework] = []
    seen: set[str] = set()
    for site in sites:
        for fw in (
            _torch(root, site),
            _simple(root, site, "jax", "jax"),
            _simple(root, site, "tensorflow", "tensorflow_cpu"),
            _simple(root, site, "tensorflow", "tensorflow"),
        ):
            if fw is not None and fw.name not in seen:
                seen.add(fw.name)
                found.append(fw)
    return tuple(found)


def nvidia_lib(root: str, sites: tuple[str, ...], folder: str, pattern: str) -> str | None:
    """First ``site/nvidia/<folder>/lib/<pattern>`` (or ``nvidia/cu*/lib``), as torch globs it."""
    base = root.rstrip("/")
    for site in sites:
        for sub in (folder, "cu1[0-9]"):
            hits = fsroot.glob(f"{base}{site}/nvidia/{sub}/lib/{pattern}")
            if hits:
                return hits[0][len(base) :] if base else hits[0]
    return None
