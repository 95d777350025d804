"""The failure classes GPU users hit (issue trackers of PyTorch, JAX and the NVIDIA container toolkit), each
on a simulated node (gcc-built stub driver libraries, NVIDIA's real libcudart from the PyPI wheel) with a
healthy twin that must not raise it. The real loader's rules decide what resolves; the same scenarios run
inside a container of a built curated image in tests/builder/test_rendered_set_docker.py."""

from __future__ import annotations

from pathlib import Path

from tests.doctor.conftest import Node, build_lib, codes

NVIDIA = "/usr/local/nvidia/lib64"
TOOLKIT = "/usr/local/cuda-12.1/lib64"


def _old_toolkit_cudart(node: Node) -> Path:
    """A CUDA 12.1 runfile toolkit's libcudart: the copy an old `ENV LD_LIBRARY_PATH=/usr/local/cuda-12.1/...`
    puts in front of the wheel's."""
    lib = build_lib(node.path(f"{TOOLKIT}/libcudart.so.12.1.105"), "cudart", soname="libcudart.so.12")
    node.path(f"{TOOLKIT}/libcudart.so.12").symlink_to(lib.name)
    return lib


def test_old_toolkit_on_the_path_shadows_the_wheels_runtime_without_any_framework(node: Node) -> None:
    node.gpu_node("550.90.07", cuda=12040)
    wheel = node.cudart(12)
    _old_toolkit_cudart(node)
    node.env["LD_LIBRARY_PATH"] = f"{TOOLKIT}:{NVIDIA}"
    report = node.diagnose()
    f = codes(report)["LIBRARY_SHADOWED"]
    assert f["severity"] == "warning"
    assert "libcudart.so.12 12.1.105 instead of 12.4.127" in f["message"] and "(toolkit)" in f["message"]
    (line,) = f["evidence"]
    assert f"{TOOLKIT}/libcudart.so.12 (toolkit 12.1.105, cuda-12.1)" in line
    assert str(wheel.relative_to(node.root)) in line and "wheel 12.4.127" in line
    assert f["fix"].startswith(f"Remove {TOOLKIT} from LD_LIBRARY_PATH: ENV LD_LIBRARY_PATH={NVIDIA}")
    # "The runtime" is the copy that would load, and the verdict is about it.
    assert report["driver"]["runtime"] == f"{TOOLKIT}/libcudart.so.12"
    assert report["driver"]["runtime_version"] == "12.1.105"


def test_healthy_twin_old_toolkit_present_but_not_on_the_path(node: Node) -> None:
    node.gpu_node("550.90.07", cuda=12040)
    node.cudart(12)
    _old_toolkit_cudart(node)
    report = node.diagnose()
    assert not {"LIBRARY_SHADOWED", "MIXED_CUDA_ORIGINS"} & set(codes(report)), report["findings"]
    assert report["driver"]["runtime_version"] == "12.4.127"
    assert report["status"] == "ok", report["findings"]


def test_mixed_origins_when_toolkit_and_wheel_copies_would_load_together(node: Node) -> None:
    # A program linking cudart and cuBLAS (no framework preloading the wheels by path): LD_LIBRARY_PATH
    # names the old toolkit and the cuBLAS wheel's directory, so 12.1 and 12.4 libraries load together.
    node.gpu_node("550.90.07", cuda=12040)
    node.cudart(12)
    _old_toolkit_cudart(node)
    blas = node.wheel_lib("nvidia-cublas-cu12", "12.4.5.8", "cublas", "libcublas.so.12")
    node.env["LD_LIBRARY_PATH"] = f"{TOOLKIT}:/{blas.parent.relative_to(node.root).as_posix()}:{NVIDIA}"
    found = codes(node.diagnose())
    mixed = found["MIXED_CUDA_ORIGINS"]
    assert "toolkit" in mixed["message"] and "wheel" in mixed["message"]
    assert "12.1" in mixed["message"] and "12.4" in mixed["message"]
    assert "libcudart.so.12 12.1.105 instead of 12.4.127" in found["LIBRARY_SHADOWED"]["message"]


def test_a_framework_that_preloads_the_wheels_by_path_is_not_shadowed(node: Node) -> None:
    # torch's own rule (_preload_cuda_deps) loads the wheels' copies by path: the toolkit's copy on
    # LD_LIBRARY_PATH does not reach torch's process, so nothing is reported for it.
    node.gpu_node("550.90.07", cuda=12040)
    cudart = node.cudart(12)
    _old_toolkit_cudart(node)
    node.torch(
        "2.4.0",
        "12.4",
        needs=(("libcudart.so.12", cudart.parent),),
        rpath="$ORIGIN/../nvidia/cuda_runtime/lib",
    )
    node.env["LD_LIBRARY_PATH"] = f"{TOOLKIT}:{NVIDIA}"
    report = node.diagnose()
    assert not {"LIBRARY_SHADOWED", "MIXED_CUDA_ORIGINS"} & set(codes(report)), report["findings"]
    assert report["driver"]["runtime_version"] == "12.4.127"


def test_healthy_twin_one_origin_one_release(node: Node) -> None:
    node.gpu_node("550.90.07", cuda=12040)
    cudart = node.cudart(12)
    blas = node.wheel_lib("nvidia-cublas-cu12", "12.4.5.8", "cublas", "libcublas.so.12")
    node.torch("2.4.0", "12.4", needs=(("libcudart.so.12", cudart.parent), ("libcublas.so.12", blas.parent)),
               rpath="$ORIGIN/../nvidia/cuda_runtime/lib:$ORIGIN/../nvidia/cublas/lib")  # fmt: skip
    report = node.diagnose()
    assert not {"MIXED_CUDA_ORIGINS", "LIBRARY_SHADOWED"} & set(codes(report)), report["findings"]


def test_driver_libraries_from_two_driver_versions(node: Node) -> None:
    # An unattended driver upgrade: the pod still has the old libcuda mounted, NVML is the new one, and the
    # kernel module (the ground truth) is the new one too.
    node.kernel_module("550.127.05")
    node.dev_nodes("nvidiactl", "nvidia-uvm", "nvidia0")
    node.libcuda(NVIDIA, "550.90.07", cuda=12040)
    node.nvml(NVIDIA, "550.127.05", cuda=12040)
    node.env["LD_LIBRARY_PATH"] = NVIDIA
    f = codes(node.diagnose())["DRIVER_LIBRARY_MISMATCH"]
    assert "550.90.07" in f["message"] and "550.127.05" in f["message"]
    assert "restart the pod" in f["fix"]


def test_driver_libraries_disagree_among_themselves_without_a_kernel_module(node: Node) -> None:
    # Inside a container /proc/driver/nvidia may be hidden: the libraries still have to agree.
    node.dev_nodes("nvidiactl", "nvidia-uvm", "nvidia0")
    node.libcuda(NVIDIA, "535.104.05", cuda=12020)
    node.nvml(NVIDIA, "535.183.01", cuda=12020)
    jit = build_lib(node.path(f"{NVIDIA}/libnvidia-ptxjitcompiler.so.535.183.01"), "ptxjit",
                    soname="libnvidia-ptxjitcompiler.so.1")  # fmt: skip
    node.path(f"{NVIDIA}/libnvidia-ptxjitcompiler.so.1").symlink_to(jit.name)
    node.env["LD_LIBRARY_PATH"] = NVIDIA
    report = node.diagnose()
    mismatches = [f for f in report["findings"] if f["code"] == "DRIVER_LIBRARY_MISMATCH"]
    text = " ".join(f["message"] for f in mismatches)
    assert "535.183.01" in text and "libcuda.so.1 is 535.104.05" in text
    assert any("libnvidia-ptxjitcompiler" in f["message"] for f in mismatches)


def test_healthy_twin_driver_libraries_of_one_version(node: Node) -> None:
    node.gpu_node("550.127.05", cuda=12040)
    jit = build_lib(node.path(f"{NVIDIA}/libnvidia-ptxjitcompiler.so.550.127.05"), "ptxjit",
                    soname="libnvidia-ptxjitcompiler.so.1")  # fmt: skip
    node.path(f"{NVIDIA}/libnvidia-ptxjitcompiler.so.1").symlink_to(jit.name)
    report = node.diagnose()
    assert "DRIVER_LIBRARY_MISMATCH" not in codes(report), report["findings"]


def test_nvml_unknown_error_with_device_nodes_present(node: Node) -> None:
    node.kernel_module("550.90.07")
    node.dev_nodes("nvidiactl", "nvidia-uvm", "nvidia0")
    node.libcuda(NVIDIA, "550.90.07", cuda=12040)
    node.nvml(NVIDIA, "550.90.07", cuda=12040, init_rc=999)
    node.env["LD_LIBRARY_PATH"] = NVIDIA
    f = codes(node.diagnose())["NVML_UNKNOWN_ERROR"]
    assert f["severity"] == "error" and "Unknown Error" in f["message"]
    assert any("/dev/nvidia0" in e for e in f["evidence"])
    assert "Restart the pod" in f["fix"] and "create-dev-char-symlinks" in f["fix"]


def test_healthy_twin_nvml_answers(node: Node) -> None:
    node.gpu_node("550.90.07", cuda=12040)
    assert "NVML_UNKNOWN_ERROR" not in codes(node.diagnose())


def _jax(node: Node, *, plugin: bool) -> None:
    site = node.path(Node.SITE)
    (site / "jax").mkdir(parents=True)
    for dist in ("jax-0.7.2", "jaxlib-0.7.2", *(["jax_cuda12_plugin-0.7.2"] if plugin else [])):
        info = site / f"{dist}.dist-info"
        info.mkdir()
        name, version = dist.split("-")
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")


def test_cpu_only_builds_on_a_gpu_node(node: Node) -> None:
    node.gpu_node("550.90.07", cuda=12040)
    node.torch("2.5.1+cpu", None, cuda_libs=False)
    _jax(node, plugin=False)
    found = [f for f in node.diagnose()["findings"] if f["code"] == "CPU_ONLY_BUILD"]
    messages = " ".join(f["message"] for f in found)
    assert len(found) == 2 and all(f["severity"] == "error" for f in found)
    assert "torch 2.5.1+cpu is the CPU build" in messages and "no CUDA plugin" in messages
    assert any("jax[cuda12]" in f["fix"] for f in found)


def test_tensorflow_cpu_on_a_gpu_node(node: Node) -> None:
    node.gpu_node("550.90.07", cuda=12040)
    site = node.path(Node.SITE)
    (site / "tensorflow").mkdir(parents=True)
    info = site / "tensorflow_cpu-2.18.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tensorflow-cpu\nVersion: 2.18.0\n")
    f = codes(node.diagnose())["CPU_ONLY_BUILD"]
    assert "tensorflow-cpu 2.18.0" in f["message"] and "tensorflow[and-cuda]" in f["fix"]


def test_healthy_twins_cuda_builds_and_cpu_builds_without_gpu(node: Node, tmp_path: Path) -> None:
    node.gpu_node("550.90.07", cuda=12040)
    node.torch("2.4.0", "12.4")
    _jax(node, plugin=True)
    assert "CPU_ONLY_BUILD" not in codes(node.diagnose())
    # A CPU build where no GPU is visible is what the user asked for.
    bare_node = Node(tmp_path / "no-gpu", None)
    bare_node.torch("2.5.1+cpu", None, cuda_libs=False)
    report = bare_node.diagnose()
    assert "CPU_ONLY_BUILD" not in codes(report) and "NO_GPU_VISIBLE" in codes(report)


def test_empty_element_in_ld_library_path_and_its_twin(node: Node) -> None:
    node.gpu_node("550.90.07", cuda=12040)
    node.env["LD_LIBRARY_PATH"] = f"{NVIDIA}::/opt/x"
    f = codes(node.diagnose())["LD_LIBRARY_PATH_EMPTY_ELEMENT"]
    assert f["fix"].startswith(f"ENV LD_LIBRARY_PATH={NVIDIA}:/opt/x")
    node.env["LD_LIBRARY_PATH"] = f"{NVIDIA}:/opt/x"
    assert "LD_LIBRARY_PATH_EMPTY_ELEMENT" not in codes(node.diagnose())
