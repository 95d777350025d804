"""Real ELF trees and fake GPU nodes for the doctor, built with gcc at test time.

Stub ``libcuda.so.1`` / ``libnvidia-ml.so.1`` are compiled C libraries; libcudart is NVIDIA's real one
from the PyPI wheels (downloaded once into ~/.cache/imagesmith-tests).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

CACHE = Path(os.environ.get("IMAGESMITH_TEST_CACHE", Path.home() / ".cache" / "imagesmith-tests"))
WHEELS = {
    12: ("nvidia-cuda-runtime-cu12", "12.4.127"),
    13: ("nvidia-cuda-runtime", "13.0.96"),
}

LIBCUDA_C = r"""
#include <unistd.h>
int cuDriverGetVersion(int *v) { *v = DRV_CUDA; return 0; }
int cuInit(unsigned int flags) {
#ifdef HANG
    for (;;) pause();
#endif
    (void)flags; return CU_INIT_RC;
}
"""

NVML_C = r"""
#include <string.h>
typedef void *nvmlDevice_t;
typedef struct { unsigned long long total, free, used; } nvmlMemory_t;
int nvmlInitWithFlags(unsigned int f) { (void)f; return INIT_RC; }
int nvmlInit_v2(void) { return INIT_RC; }
int nvmlShutdown(void) { return 0; }
const char *nvmlErrorString(int r) { return r == 18 ? "Driver/library version mismatch" : "Unknown Error"; }
int nvmlSystemGetDriverVersion(char *b, unsigned int n) { strncpy(b, DRIVER, n); return 0; }
int nvmlSystemGetCudaDriverVersion(int *v) { *v = CUDA_VER; return 0; }
int nvmlSystemGetCudaDriverVersion_v2(int *v) { *v = CUDA_VER; return 0; }
int nvmlDeviceGetCount_v2(unsigned int *c) { *c = NGPU; return 0; }
int nvmlDeviceGetHandleByIndex_v2(unsigned int i, nvmlDevice_t *h) { *h = (void *)(long)(i + 1); return 0; }
int nvmlDeviceGetName(nvmlDevice_t h, char *b, unsigned int n) { (void)h; strncpy(b, GPU_NAME, n); return 0; }
int nvmlDeviceGetBrand(nvmlDevice_t h, int *b) { (void)h; *b = BRAND; return 0; }
int nvmlDeviceGetCudaComputeCapability(nvmlDevice_t h, int *ma, int *mi) { (void)h; *ma = CC_MAJOR; *mi = CC_MINOR; return 0; }
int nvmlDeviceGetMemoryInfo(nvmlDevice_t h, nvmlMemory_t *m) { (void)h; m->total = 80ULL << 30; m->free = m->total; m->used = 0; return 0; }
"""


def fatbin_blob(entries: list[tuple[int, int]]) -> bytes:
    """A ``.nv_fatbin`` section's bytes: one entry per (kind, sm) pair (kind 2 = SASS/ELF, 1 = PTX)."""
    import struct

    body = b""
    for kind, arch in entries:
        header = (
            struct.pack("<HHIQ", kind, 0x0101, 64, 16) + b"\0" * 12 + struct.pack("<I", arch) + b"\0" * 32
        )
        body += header + b"\0" * 16
    return struct.pack("<IHHQ", 0xBA55ED50, 1, 16, len(body)) + body


def gcc(out: Path, source: str, *args: str, soname: str | None = None, shared: bool = True) -> Path:
    """Compile C ``source`` into ``out`` (a shared library unless ``shared=False``)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    src = out.parent / f".{out.name}.c"
    src.write_text(source)
    cmd = ["gcc", "-o", str(out), str(src)]
    if shared:
        cmd[1:1] = ["-shared", "-fPIC"]
        if soname:
            cmd.append(f"-Wl,-soname,{soname}")
    cmd += list(args)
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    src.unlink()
    return out


def lib_source(name: str, calls: tuple[str, ...] = ()) -> str:
    """A library defining ``<name>_fn`` that calls the given functions (to keep DT_NEEDED honest)."""
    decls = "".join(f"int {c}_fn(void);\n" for c in calls)
    body = " + ".join([*(f"{c}_fn()" for c in calls), "1"])
    return f"{decls}int {name}_fn(void) {{ return {body}; }}\n"


def build_lib(path: Path, name: str, *, needs: tuple[tuple[str, Path], ...] = (), soname: str | None = None,
              rpath: str | None = None, runpath: str | None = None) -> Path:  # fmt: skip
    """A real shared library with DT_SONAME, DT_NEEDED on ``needs`` (name, dir) and RPATH/RUNPATH."""
    args: list[str] = ["-Wl,--no-as-needed"]
    for dep, directory in needs:
        args += [f"-L{directory}", f"-l:{dep}"]
    if rpath is not None:
        args.append(f"-Wl,--disable-new-dtags,-rpath,{rpath}")
    if runpath is not None:
        args.append(f"-Wl,--enable-new-dtags,-rpath,{runpath}")
    calls = tuple(dep.split(".so")[0].removeprefix("lib").replace("-", "_") for dep, _ in needs)
    return gcc(path, lib_source(name, calls), *args, soname=soname or path.name)


def build_exe(path: Path, *, needs: tuple[tuple[str, Path], ...], rpath: str | None = None,
              runpath: str | None = None) -> Path:  # fmt: skip
    args: list[str] = []
    for dep, directory in needs:
        args += [f"-L{directory}", f"-l:{dep}"]
    if rpath is not None:
        args.append(f"-Wl,--disable-new-dtags,-rpath,{rpath}")
    if runpath is not None:
        args.append(f"-Wl,--enable-new-dtags,-rpath,{runpath}")
    calls = tuple(dep.split(".so")[0].removeprefix("lib").replace("-", "_") for dep, _ in needs)
    decls = "".join(f"int {c}_fn(void);\n" for c in calls)
    body = " + ".join([*(f"{c}_fn()" for c in calls), "0"])
    return gcc(
        path,
        f"{decls}int main(void) {{ return {body} > 1000; }}\n",
        *args,
        "-Wl,--no-as-needed",
        shared=False,
    )


@pytest.fixture(scope="session")
def cudart_wheels() -> dict[int, Path]:
    """NVIDIA's real libcudart wheels from PyPI, cached between runs; fails loudly when offline."""
    try:
        return download_cudart_wheels()
    except RuntimeError as exc:
        pytest.fail(str(exc))


def download_cudart_wheels() -> dict[int, Path]:
    """The wheels of ``WHEELS`` in ``CACHE`` (downloaded once); RuntimeError naming what failed."""
    CACHE.mkdir(parents=True, exist_ok=True)
    out: dict[int, Path] = {}
    for major, (dist, version) in WHEELS.items():
        stem = dist.replace("-", "_") + f"-{version}-"
        hits = [p for p in CACHE.glob("*.whl") if p.name.startswith(stem)]
        if not hits:
            proc = subprocess.run(
                [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--dest", str(CACHE),
                 "--platform", "manylinux2014_x86_64", "--python-version", "3.11", f"{dist}=={version}"],
                capture_output=True, text=True, timeout=300,
            )  # fmt: skip
            hits = [p for p in CACHE.glob("*.whl") if p.name.startswith(stem)]
            if proc.returncode != 0 or not hits:
                raise RuntimeError(
                    f"could not download {dist}=={version} from PyPI: {proc.stderr.strip()[-500:]}"
                )
        out[major] = hits[0]
    return out


def install_wheel(wheel: Path, site: Path) -> Path:
    """Unpack a wheel into ``site`` exactly as pip lays it out (package files + dist-info)."""
    site.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as z:
        z.extractall(site)
    return site


class Node:
    """A fake GPU node / container filesystem under ``root`` for ``imagesmith doctor --root``."""

    SITE = "usr/local/lib/python3.11/site-packages"

    def __init__(self, root: Path, wheels: dict[int, Path] | None) -> None:
        self.root = root
        self.wheels = wheels or {}
        (root / "etc").mkdir(parents=True, exist_ok=True)
        (root / "usr/lib/x86_64-linux-gnu").mkdir(parents=True, exist_ok=True)
        self.env: dict[str, str] = {}

    def path(self, rel: str) -> Path:
        return self.root / rel.lstrip("/")

    def kernel_module(self, version: str) -> None:
        p = self.path("/proc/driver/nvidia/version")
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(
            f"NVRM version: NVIDIA UNIX x86_64 Kernel Module  {version}  Thu Oct 19 2023\nGCC version: gcc 12\n"
        )
        (self.path("/proc/driver/nvidia/gpus/0000:00:04.0")).mkdir(parents=True, exist_ok=True)

    def dev_nodes(self, *names: str) -> None:
        for n in names:
            p = self.path(f"/dev/{n}")
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text("")

    def libcuda(self, directory: str, version: str, *, cuda: int, init_rc: int = 0, hang: bool = False,
                stub: bool = False) -> Path:  # fmt: skip
        d = self.path(directory)
        name = "libcuda.so" if stub else f"libcuda.so.{version}"
        defs = [f"-DDRV_CUDA={cuda}", f"-DCU_INIT_RC={init_rc}"] + (["-DHANG"] if hang else [])
        lib = gcc(d / name, LIBCUDA_C, *defs, soname="libcuda.so.1")
        link = d / "libcuda.so.1"
        if not link.exists():
            link.symlink_to(name)
        return lib

    def nvml(self, directory: str, driver: str, *, cuda: int, gpu: str = "NVIDIA H100 80GB HBM3", brand: int = 2,
             cc: tuple[int, int] = (9, 0), count: int = 1, init_rc: int = 0) -> Path:  # fmt: skip
        d = self.path(directory)
        defs = [f'-DDRIVER="{driver}"', f"-DCUDA_VER={cuda}", f'-DGPU_NAME="{gpu}"', f"-DBRAND={brand}",
                f"-DCC_MAJOR={cc[0]}", f"-DCC_MINOR={cc[1]}", f"-DNGPU={count}", f"-DINIT_RC={init_rc}"]  # fmt: skip
        lib = gcc(d / f"libnvidia-ml.so.{driver}", NVML_C, *defs, soname="libnvidia-ml.so.1")
        (d / "libnvidia-ml.so.1").symlink_to(lib.name)
        return lib

    def gpu_node(self, driver: str = "535.104.05", *, cuda: int = 12020, directory: str = "/usr/local/nvidia/lib64",
                 gpu: str = "NVIDIA H100 80GB HBM3", brand: int = 2, cc: tuple[int, int] = (9, 0)) -> None:  # fmt: skip
        """A healthy GKE-style node: kernel module, device nodes, driver libs mounted in ``directory``."""
        self.kernel_module(driver)
        self.dev_nodes("nvidiactl", "nvidia-uvm", "nvidia0")
        self.libcuda(directory, driver, cuda=cuda)
        self.nvml(directory, driver, cuda=cuda, gpu=gpu, brand=brand, cc=cc)
        self.env["LD_LIBRARY_PATH"] = directory

    def cudart(self, major: int) -> Path:
        install_wheel(self.wheels[major], self.path(self.SITE))
        sub = "cuda_runtime" if major == 12 else f"cu{major}"
        return self.path(f"{self.SITE}/nvidia/{sub}/lib/libcudart.so.{major}")

    def wheel_lib(self, dist: str, version: str, folder: str, soname: str, *, needs: tuple[tuple[str, Path], ...] = (),
                  rpath: str | None = None) -> Path:  # fmt: skip
        """A gcc-built library laid out as an NVIDIA wheel (nvidia/<folder>/lib + dist-info RECORD)."""
        site = self.path(self.SITE)
        lib = build_lib(site / f"nvidia/{folder}/lib/{soname}", soname.split(".so")[0].removeprefix("lib"),
                        needs=needs, soname=soname, rpath=rpath)  # fmt: skip
        info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir(parents=True, exist_ok=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        with (info / "RECORD").open("a") as f:
            f.write(f"nvidia/{folder}/lib/{soname},,\n")
        return lib

    def torch(self, version: str, cuda: str | None, *, needs: tuple[tuple[str, Path], ...] = (), rpath: str | None = None,
              pins: dict[str, str] | None = None, cuda_libs: bool = True) -> Path:  # fmt: skip
        """A torch install; a CUDA build (``cuda_libs``) ships lib/libtorch_cuda.so, a CPU build does not."""
        site = self.path(self.SITE)
        pkg = site / "torch"
        (pkg / "lib").mkdir(parents=True, exist_ok=True)
        (pkg / "version.py").write_text(f"__version__ = '{version}'\ncuda: Optional[str] = {cuda!r}\n")
        info = site / f"torch-{version}.dist-info"
        info.mkdir(exist_ok=True)
        meta = f"Metadata-Version: 2.1\nName: torch\nVersion: {version}\n"
        meta += "".join(
            f'Requires-Dist: {k}=={v}; platform_system == "Linux"\n' for k, v in (pins or {}).items()
        )
        (info / "METADATA").write_text(meta)
        build_lib(pkg / "lib/libtorch_global_deps.so", "torch_global_deps", soname="libtorch_global_deps.so")
        if cuda_libs and not (pkg / "lib/libtorch_cuda.so").exists():
            build_lib(pkg / "lib/libtorch_cuda.so", "torch_cuda", soname="libtorch_cuda.so")
        return build_lib(pkg / "_C.cpython-311-x86_64-linux-gnu.so", "torch_c", needs=needs, rpath=rpath,
                         soname="_C.cpython-311-x86_64-linux-gnu.so")  # fmt: skip

    def doctor(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        full = {k: v for k, v in os.environ.items() if not k.startswith(("NVIDIA_", "CUDA_", "LD_", "CONDA"))}
        full.update(self.env)
        full.update(env or {})
        return subprocess.run(
            [sys.executable, "-m", "imagesmith", "doctor", "--root", str(self.root), *args],
            capture_output=True, text=True, env=full, timeout=timeout,
        )  # fmt: skip

    def diagnose(self, *args: str, env: dict[str, str] | None = None) -> dict[str, object]:
        proc = self.doctor("--json", *args, env=env)
        assert proc.returncode in (0, 1), proc.stderr
        data = json.loads(proc.stdout)
        assert isinstance(data, dict)
        # Held for every simulated node: evidence, messages and fixes never print Python's None.
        for finding in data["findings"]:
            for line in (finding["message"], finding["fix"], *finding["evidence"]):
                assert "None" not in line, finding
        data["_rc"] = proc.returncode
        return data


@pytest.fixture
def node(tmp_path: Path, cudart_wheels: dict[int, Path]) -> Node:
    return Node(tmp_path / "root", cudart_wheels)


@pytest.fixture
def bare_node(tmp_path: Path) -> Node:
    return Node(tmp_path / "root", None)


def codes(report: dict[str, object]) -> dict[str, dict[str, object]]:
    findings = report["findings"]
    assert isinstance(findings, list)
    return {f["code"]: f for f in findings}


def require(tool: str) -> Callable[[], None]:
    def check() -> None:
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is required (make system-deps)")

    return check
