"""One fake node per finding code: stub driver libraries compiled here, real libcudart from PyPI."""

from __future__ import annotations

import json
import time

from tests.doctor.conftest import Node, build_lib, codes, fatbin_blob, gcc

NVIDIA = "/usr/local/nvidia/lib64"


def test_healthy_node_is_ok_and_reports_wheel_cudart_version(node: Node) -> None:
    node.gpu_node("550.90.07", cuda=12040)
    node.cudart(12)
    report = node.diagnose()
    assert report["status"] == "ok", report["findings"]
    assert report["_rc"] == 0
    cudart = next(x for x in report["libraries"] if x["name"] == "libcudart.so.12")  # type: ignore[union-attr]
    assert cudart["version"] == "12.4.127" and cudart["origin"] == "wheel"
    assert cudart["dist"] == "nvidia-cuda-runtime-cu12 12.4.127"
    libcuda = next(x for x in report["libraries"] if x["name"] == "libcuda.so.1")  # type: ignore[union-attr]
    assert libcuda["loaded"] and libcuda["origin"] == "driver" and libcuda["version"] == "550.90.07"
    assert report["gpus"][0]["capability"] == "9.0"  # type: ignore[index]
    assert report["driver"]["cuda_driver_version"] == "12.4" and report["driver"]["cu_init"] == 0  # type: ignore[index]


def test_no_gpu_visible(bare_node: Node) -> None:
    report = bare_node.diagnose()
    f = codes(report)["NO_GPU_VISIBLE"]
    assert f["severity"] == "error" and report["_rc"] == 1
    assert "nvidia.com/gpu" in f["fix"]
    report = bare_node.diagnose(env={"NVIDIA_VISIBLE_DEVICES": "void"})
    assert "NVIDIA_VISIBLE_DEVICES='void'" in codes(report)["NO_GPU_VISIBLE"]["message"]


def test_device_nodes_missing(node: Node) -> None:
    node.gpu_node()
    (node.path("/dev/nvidia-uvm")).unlink()
    f = codes(node.diagnose())["DEVICE_NODES_MISSING"]
    assert "/dev/nvidia-uvm" in f["message"] and "nvidia-ctk" in f["fix"]


def test_driver_capabilities_without_compute(node: Node) -> None:
    node.kernel_module("535.104.05")
    node.dev_nodes("nvidiactl", "nvidia-uvm", "nvidia0")
    node.nvml(NVIDIA, "535.104.05", cuda=12020)
    node.env["LD_LIBRARY_PATH"] = NVIDIA
    node.cudart(12)
    report = node.diagnose(env={"NVIDIA_DRIVER_CAPABILITIES": "utility"})
    f = codes(report)["DRIVER_CAPABILITIES"]
    assert "NVIDIA_DRIVER_CAPABILITIES=utility" in f["evidence"]
    assert f["fix"].startswith("ENV NVIDIA_DRIVER_CAPABILITIES=compute,utility")


def test_libcuda_not_found_when_mount_not_on_path(node: Node) -> None:
    node.gpu_node()
    node.env.pop("LD_LIBRARY_PATH")
    node.cudart(12)
    f = codes(node.diagnose())["LIBCUDA_NOT_FOUND"]
    assert any("/usr/local/nvidia/lib64/libcuda.so.535.104.05" in e for e in f["evidence"])
    assert f["fix"].startswith("ENV LD_LIBRARY_PATH=/usr/local/nvidia/lib64:")


def test_libcuda_stub_first_on_ld_library_path(node: Node) -> None:
    node.gpu_node()
    node.libcuda("/usr/local/cuda/lib64/stubs", "0", cuda=12040, init_rc=34, stub=True)
    node.env["LD_LIBRARY_PATH"] = f"/usr/local/cuda/lib64/stubs:{NVIDIA}"
    node.cudart(12)
    f = codes(node.diagnose())["LIBCUDA_STUB"]
    assert "cuInit(0) = 34 (CUDA_ERROR_STUB_LIBRARY)" in f["evidence"]
    assert any("shadowed real driver: /usr/local/nvidia/lib64/libcuda.so.1" in e for e in f["evidence"])
    assert "/usr/local/cuda/lib64/stubs" in f["fix"]


def test_driver_too_old_for_cuda13_and_minor_version_caveat(node: Node) -> None:
    node.gpu_node("570.86.10", cuda=12080)
    node.cudart(13)
    f = codes(node.diagnose())["DRIVER_TOO_OLD"]
    assert f["severity"] == "error" and "13.0" in f["message"]
    assert any("nvidia-cuda-runtime 13.0.96" in e for e in f["evidence"])


def test_cuda_12_4_on_535_is_a_caveat_not_an_error(node: Node) -> None:
    node.gpu_node("535.104.05", cuda=12020)
    node.cudart(12)
    report = node.diagnose()
    assert "DRIVER_TOO_OLD" not in codes(report)  # one vocabulary: a caveat is never called a failure
    f = codes(report)["MINOR_VERSION_COMPATIBLE"]
    assert f["severity"] == "warning" and "minor-version compatibility" in f["message"]
    assert any("PTX" in e for e in f["evidence"])
    assert report["status"] == "warning" and report["_rc"] == 0
    assert node.doctor("--strict").returncode == 1


def test_forward_compat_on_geforce(node: Node) -> None:
    node.gpu_node("535.104.05", cuda=12020, gpu="NVIDIA GeForce RTX 3090", brand=5, cc=(8, 6))
    node.libcuda("/usr/local/cuda/compat", "575.57.08", cuda=12090, init_rc=804)
    node.env["LD_LIBRARY_PATH"] = f"/usr/local/cuda/compat:{NVIDIA}"
    node.cudart(12)
    f = codes(node.diagnose())["FORWARD_COMPAT_UNSUPPORTED_GPU"]
    assert f["severity"] == "error"
    assert any("/usr/local/cuda/compat/libcuda.so.1" in e for e in f["evidence"])
    assert "compat" in f["fix"]


def test_driver_library_mismatch_baked_into_image(node: Node) -> None:
    node.gpu_node("535.104.05", cuda=12020)
    node.libcuda("/usr/lib/x86_64-linux-gnu", "565.57.01", cuda=12070)
    info = node.path("/var/lib/dpkg/info")
    info.mkdir(parents=True)
    (info / "libnvidia-compute-565:amd64.list").write_text("/usr/lib/x86_64-linux-gnu/libcuda.so.565.57.01\n")
    node.path("/var/lib/dpkg/status").write_text(
        "Package: libnvidia-compute-565\nVersion: 565.57.01-0ubuntu1\n\n"
    )
    node.env["LD_LIBRARY_PATH"] = f"/usr/lib/x86_64-linux-gnu:{NVIDIA}"
    f = codes(node.diagnose())["DRIVER_LIBRARY_MISMATCH"]
    assert "565.57.01" in f["message"] and "535.104.05" in f["message"]
    assert "baked into the image by libnvidia-compute-565" in f["message"]
    assert "apt-get purge" in f["fix"]


def test_nvml_version_mismatch_error(node: Node) -> None:
    node.kernel_module("535.104.05")
    node.dev_nodes("nvidiactl", "nvidia-uvm", "nvidia0")
    node.libcuda(NVIDIA, "535.104.05", cuda=12020)
    node.nvml(NVIDIA, "535.104.05", cuda=12020, init_rc=18)
    node.env["LD_LIBRARY_PATH"] = NVIDIA
    f = codes(node.diagnose())["DRIVER_LIBRARY_MISMATCH"]
    assert "mismatch" in f["message"] and "Remove driver packages" in f["fix"]


def test_no_kernel_image_fromfatbin_blob(node: Node) -> None:
    node.gpu_node("570.86.10", cuda=12080, gpu="NVIDIA GeForce RTX 5090", brand=5, cc=(12, 0))
    node.cudart(12)
    node.torch("2.6.0+cu124", "12.4")
    # A real ELF with a .nv_fatbin section carrying sm_80 and sm_90 SASS entries.
    blob = fatbin_blob([(2, 80), (2, 90)])
    src = (
        '__attribute__((section(".nv_fatbin"))) const unsigned char fb[] = {'
        + ",".join(map(str, blob))
        + "};\n"
    )
    gcc(node.path(f"{Node.SITE}/torch/lib/libtorch_cuda.so"), src, soname="libtorch_cuda.so")
    f = codes(node.diagnose())["NO_KERNEL_IMAGE"]
    assert f["severity"] == "error" and "sm_120" in f["message"]
    assert "compiled SASS: sm_80, sm_90" in f["evidence"][0]


def test_library_shadowed_by_ld_library_path(node: Node) -> None:
    node.gpu_node("550.90.07", cuda=12040)
    site = node.path(Node.SITE)
    jit = node.wheel_lib("nvidia-nvjitlink-cu12", "12.4.127", "nvjitlink", "libnvJitLink.so.12")
    old = build_lib(
        node.path("/usr/local/cuda-12.1/lib64/libnvJitLink.so.12.1.105"),
        "nvJitLink",
        soname="libnvJitLink.so.12",
    )
    node.path("/usr/local/cuda-12.1/lib64/libnvJitLink.so.12").symlink_to(old.name)
    sparse = node.wheel_lib("nvidia-cusparse-cu12", "12.3.1.170", "cusparse", "libcusparse.so.12",
                            needs=(("libnvJitLink.so.12", jit.parent),))  # fmt: skip
    node.torch(
        "2.4.0", None, needs=(("libcusparse.so.12", sparse.parent),), rpath="$ORIGIN/../nvidia/cusparse/lib"
    )
    node.env["LD_LIBRARY_PATH"] = f"/usr/local/cuda-12.1/lib64:{NVIDIA}:"
    report = node.diagnose()
    f = codes(report)["LIBRARY_SHADOWED"]
    assert (
        "/usr/local/cuda-12.1/lib64 (toolkit)" in f["message"]
        and "12.1.105 instead of 12.4.127" in f["message"]
    )
    assert any(
        "/usr/local/cuda-12.1/lib64/libnvJitLink.so.12" in e and str(jit.relative_to(node.root)) in e
        for e in f["evidence"]
    )
    assert f"Remove /usr/local/cuda-12.1/lib64 from LD_LIBRARY_PATH: ENV LD_LIBRARY_PATH={NVIDIA}" in f["fix"]
    empty = codes(report)["LD_LIBRARY_PATH_EMPTY_ELEMENT"]
    assert empty["severity"] == "warning" and empty["fix"].startswith(
        "ENV LD_LIBRARY_PATH=/usr/local/cuda-12.1/lib64:"
    )
    _ = site


def test_cudnn_mismatch_against_torch_pin(node: Node) -> None:
    node.gpu_node("550.90.07", cuda=12040)
    node.cudart(12)
    node.wheel_lib("nvidia-cudnn-cu12", "9.1.0.70", "cudnn", "libcudnn.so.9")
    node.torch(
        "2.6.0+cu124", "12.4", pins={"nvidia-cudnn-cu12": "9.5.1.17", "nvidia-cuda-runtime-cu12": "12.4.127"}
    )
    f = codes(node.diagnose())["CUDNN_MISMATCH"]
    assert "9.5.1.17" in f["message"] and "9.1.0.70" in f["message"]


def test_glibc_too_old(node: Node, tmp_path: object) -> None:
    node.gpu_node("550.90.07", cuda=12040)
    build = node.root.parent / "build"
    # Link against a libc-like library that defines GLIBC_2.99, then ship a libc.so.6 defining only 2.17.
    for version, out in (("GLIBC_2.99", build), ("GLIBC_2.17", node.path("/usr/lib/x86_64-linux-gnu"))):
        vmap = out / "v.map"
        out.mkdir(parents=True, exist_ok=True)
        vmap.write_text(f"{version} {{ global: c_fn; local: *; }};\n")
        gcc(
            out / "libc.so.6",
            "int c_fn(void){return 1;}\n",
            f"-Wl,--version-script={vmap}",
            soname="libc.so.6",
        )
        vmap.unlink()
    node.torch("2.6.0", None, needs=(("libc.so.6", build),))
    f = codes(node.diagnose())["GLIBC_TOO_OLD"]
    assert "GLIBC_2.99" in f["message"] and "2.17" in f["message"]


def test_mixed_cuda_origins_conda_and_wheel(node: Node) -> None:
    node.gpu_node("550.90.07", cuda=12040)
    cudart = node.cudart(12)
    conda = node.path("/opt/conda")
    blas = build_lib(conda / "lib/libcublas.so.12", "cublas", soname="libcublas.so.12")
    (conda / "conda-meta").mkdir(parents=True)
    (conda / "conda-meta/libcublas-12.1.0.26-0.json").write_text(
        json.dumps({"name": "libcublas", "version": "12.1.0.26", "files": ["lib/libcublas.so.12"]})
    )
    node.torch("2.4.0", None, needs=(("libcudart.so.12", cudart.parent), ("libcublas.so.12", blas.parent)),
               rpath="$ORIGIN/../nvidia/cuda_runtime/lib")  # fmt: skip
    node.env["LD_LIBRARY_PATH"] = f"/opt/conda/lib:{NVIDIA}"
    f = codes(node.diagnose())["MIXED_CUDA_ORIGINS"]
    assert "conda" in f["message"] and "wheel" in f["message"]


def test_cuda13_wheels_with_their_own_library_majors_are_one_stack(node: Node) -> None:
    # torch's CUDA 13.0 wheels: cuFFT 12.0 and cuSPARSE 12.6 belong to CUDA 13.0 (found in the built
    # torch image, where the doctor had called this "CUDA majors 12, 13").
    node.gpu_node("580.95.05", cuda=13000)
    cudart = node.cudart(13)
    fft = node.wheel_lib("nvidia-cufft", "12.0.0.61", "cu13", "libcufft.so.12")
    sparse = node.wheel_lib("nvidia-cusparse", "12.6.3.3", "cu13", "libcusparse.so.12")
    node.torch("2.13.0", None, needs=(("libcudart.so.13", cudart.parent), ("libcufft.so.12", fft.parent),
               ("libcusparse.so.12", sparse.parent)), rpath="$ORIGIN/../nvidia/cu13/lib")  # fmt: skip
    report = node.diagnose()
    assert "MIXED_CUDA_ORIGINS" not in codes(report), codes(report).get("MIXED_CUDA_ORIGINS")
    loaded = {lib["name"] for lib in report["libraries"] if lib.get("loaded")}  # type: ignore[index, union-attr]
    assert {"libcufft.so.12", "libcusparse.so.12"} <= loaded


def test_hanging_probe_times_out_instead_of_hanging(node: Node) -> None:
    node.kernel_module("550.90.07")
    node.dev_nodes("nvidiactl", "nvidia-uvm", "nvidia0")
    node.libcuda(NVIDIA, "550.90.07", cuda=12040, hang=True)
    node.env["LD_LIBRARY_PATH"] = NVIDIA
    start = time.monotonic()
    report = node.diagnose("--probe-timeout", "1")
    assert time.monotonic() - start < 30
    assert "timed out" in str(report["driver"]["probe_error"])  # type: ignore[index]
