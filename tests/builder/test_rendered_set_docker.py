"""The renderer and the builder together: a policy rendered by `imagesmith images render` builds as is.

A small policy (one CUDA-runtime line) is rendered into a temporary root, then built on the real engine
with the debootstrapped OS base; the smoke tests run the doctor inside and check that libcudart is the
CUDA runtime the plan promised.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

POLICY = """\
schema: 1
registry: localhost/imagesmith-e2e
bases:
  bookworm: {image: docker.io/library/debian:bookworm-slim, python: "3.11", description: Debian 12}
pythons: ["3.11"]
variants: [runtime]
frameworks:
  cuda: ["12.9"]
fleet:
  - {name: l4, driver: "575.57.08", gpu: L4}
"""


def imagesmith(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "imagesmith", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=1500,
        check=False,
    )


class Rendered:
    def __init__(self, root: Path, plan: dict[str, Any], manifest: dict[str, Any]) -> None:
        self.root = root
        self.plan = plan
        self.manifest = manifest
        self.child = plan["images"][1]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory, docker_client: Any, os_base: str) -> Rendered:
    tmp_path = tmp_path_factory.mktemp("rendered")
    (tmp_path / "imagesmith.yaml").write_text(POLICY)
    locked = imagesmith("images", "lock", "--ca-cert", "/etc/ssl/certs/ca-certificates.crt", cwd=tmp_path)
    assert locked.returncode == 0, locked.stdout + locked.stderr
    result = imagesmith("images", "render", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    plan = json.loads((tmp_path / "base_images" / "plan.json").read_text())
    built = imagesmith(
        "build",
        "--plan",
        "base_images/plan.json",
        "--base-image",
        f"bookworm={os_base}",
        "--ca-cert",
        "/etc/ssl/certs/ca-certificates.crt",
        "--output-dir",
        "out",
        cwd=tmp_path,
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr
    manifest = {i["name"]: i for i in json.loads((tmp_path / "out" / "manifest.json").read_text())["images"]}
    return Rendered(tmp_path, plan, manifest)


@pytest.mark.docker
@pytest.mark.slow
def test_rendered_policy_builds_and_smoke_tests(rendered: Rendered, docker_client: Any) -> None:
    plan, manifest, child = rendered.plan, rendered.manifest, rendered.child
    names = [image["name"] for image in plan["images"]]
    assert names == ["base-py3.11-bookworm", "cuda-12.9-py3.11-bookworm-runtime"]
    image = docker_client.images.get(child["tag"])
    # Labels read back from the built image equal the plan's.
    for key, value in child["labels"].items():
        assert image.labels.get(key) == value, key
    assert image.labels["io.imagesmith.cuda"] == "12.9"
    # The doctor ran inside and found the promised CUDA runtime (the builder's smoke test), and the
    # image runs as the non-root user the template declares.
    assert manifest[child["name"]]["status"] in ("built", "unchanged"), manifest[child["name"]]
    user = docker_client.containers.run(child["tag"], ["id", "-u"], remove=True, network_mode="none")
    assert user.decode().strip() == "1000"
    # No GPU here: the doctor reports error findings and exits 1, but must still print its JSON.
    container = docker_client.containers.run(
        child["tag"], ["imagesmith", "doctor", "--json", "--no-probe"], detach=True, network_mode="none"
    )
    try:
        assert container.wait(timeout=120)["StatusCode"] in (0, 1)
        doctor = container.logs(stdout=True, stderr=False)
    finally:
        container.remove(force=True)
    report = json.loads(doctor.decode())
    cudart = next(lib for lib in report["libraries"] if lib["name"].startswith("libcudart"))
    assert cudart["version"].startswith("12.9") and cudart["origin"] == "wheel"
    # No package-manager caches in any layer: apt's downloaded .debs and lists, pip's cache. The OS base
    # here is a debootstrapped one without Debian's docker-clean hook, so the Dockerfile must clean up.
    caches = "/var/cache/apt/archives /var/lib/apt/lists /root/.cache/pip /home/app/.cache/pip"
    leftovers = docker_client.containers.run(
        child["tag"],
        ["sh", "-c", f"find {caches} -type f ! -name lock 2>/dev/null; true"],
        remove=True,
        network_mode="none",
        user="0",
    )
    assert leftovers.decode().split() == []


def _doctor_in_image(
    client: Any,
    tag: str,
    command: list[str],
    volumes: dict[str, dict[str, str]],
    environment: dict[str, str],
    *,
    user: str | None = None,
) -> tuple[int, dict[str, Any]]:
    """Run the doctor in a container of the image (no network); its exit status and its JSON report."""
    container = client.containers.run(
        tag,
        command,
        detach=True,
        network_mode="none",
        volumes=volumes,
        environment=environment,
        **({"user": user} if user else {}),
    )
    try:
        status = container.wait(timeout=120)["StatusCode"]
        out = container.logs(stdout=True, stderr=False).decode()
        err = container.logs(stdout=False, stderr=True).decode()
    finally:
        container.remove(force=True)
    assert status in (0, 1), err
    report = json.loads(out)
    assert isinstance(report, dict)
    return int(status), report


# The doctor's fake-node scenarios, inside a container of the curated image: the stub driver libraries
# (compiled here, as in tests/doctor) are bind-mounted where the NVIDIA container runtime mounts the real
# ones, and empty files stand in for the device nodes. The image, its Python, its venv and its real
# libcudart 12.9 wheel are the ones that ship.
SCENARIOS = {
    # name: (driver, CUDA version the driver reports, stub-first?, expected error codes, absent codes)
    "healthy": (
        "575.57.08",
        12090,
        False,
        set(),
        {
            "LIBCUDA_NOT_FOUND",
            "LIBCUDA_STUB",
            "DRIVER_TOO_OLD",
            "LIBRARY_SHADOWED",
            "MIXED_CUDA_ORIGINS",
            "DRIVER_LIBRARY_MISMATCH",
            "NVML_UNKNOWN_ERROR",
            "CPU_ONLY_BUILD",
            "LD_LIBRARY_PATH_EMPTY_ELEMENT",
            "MINOR_VERSION_COMPATIBLE",
        },
    ),
    "stub-first": ("575.57.08", 12090, True, {"LIBCUDA_STUB"}, {"LIBCUDA_NOT_FOUND"}),
    "driver-too-old": ("520.61.05", 11080, False, {"DRIVER_TOO_OLD"}, {"LIBCUDA_STUB"}),
}


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_doctor_scenarios_inside_the_built_image(
    rendered: Rendered, docker_client: Any, tmp_path: Path, scenario: str
) -> None:
    from tests.doctor.conftest import Node

    driver, cuda, stub_first, expected, absent = SCENARIOS[scenario]
    node = Node(tmp_path / "node", None)
    node.libcuda("/usr/local/nvidia/lib64", driver, cuda=cuda)
    node.nvml("/usr/local/nvidia/lib64", driver, cuda=cuda, gpu="NVIDIA L4", brand=2, cc=(8, 9))
    node.dev_nodes("nvidia0", "nvidiactl", "nvidia-uvm")
    volumes = {str(node.path("/usr/local/nvidia/lib64")): {"bind": "/usr/local/nvidia/lib64", "mode": "ro"}}
    for dev in ("nvidia0", "nvidiactl", "nvidia-uvm"):
        volumes[str(node.path(f"/dev/{dev}"))] = {"bind": f"/dev/{dev}", "mode": "ro"}
    environment: dict[str, str] = {}
    if stub_first:
        # The toolkit's link-time stub, first on the path: what a devel image's ENV sometimes leaves behind.
        node.libcuda("/usr/local/cuda/lib64/stubs", driver, cuda=cuda, init_rc=34, stub=True)
        stubs = node.path("/usr/local/cuda/lib64/stubs")
        volumes[str(stubs)] = {"bind": "/usr/local/cuda/lib64/stubs", "mode": "ro"}
        environment["LD_LIBRARY_PATH"] = (
            "/usr/local/cuda/lib64/stubs:/usr/local/nvidia/lib:/usr/local/nvidia/lib64"
        )
    status, report = _doctor_in_image(
        docker_client, rendered.child["tag"], ["imagesmith", "doctor", "--json"], volumes, environment
    )
    errors = {f["code"] for f in report["findings"] if f["severity"] == "error"}
    found = {f["code"] for f in report["findings"]}
    assert expected <= errors, report["findings"]
    assert not (absent & found), report["findings"]
    assert status == (1 if errors else 0)
    assert report["driver"]["version"] == driver, report["driver"]
    cudart = next(lib for lib in report["libraries"] if lib["name"].startswith("libcudart"))
    assert cudart["version"].startswith("12.9") and cudart["origin"] == "wheel"
    # The loader picks libcuda.so.1 where the image's LD_LIBRARY_PATH says, the stub when it comes first.
    libcuda = report["loader"]["libcuda"]
    picked = "/usr/local/cuda/lib64/stubs/" if stub_first else "/usr/local/nvidia/lib64/"
    assert libcuda["path"].startswith(picked) and libcuda["via"] == "ld_library_path", libcuda
    if scenario == "healthy":
        assert not errors, report["findings"]


# The failure classes of tests/doctor/test_failure_classes.py, inside the built image with the real loader
# paths (no --root): the image's own libcudart 12.9 wheel is the intended copy, the stub driver libraries
# are mounted where the NVIDIA runtime mounts the real ones. Their healthy twin is "healthy" above.
NVIDIA_LIBS = "/usr/local/nvidia/lib64"
VENV_SITE = "/opt/venv/lib/python3.11/site-packages"
CLASSES = (
    "shadowed-by-old-toolkit",
    "driver-library-mismatch",
    "nvml-unknown-error",
    "cpu-only-jax",
    "empty-element",
)


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.parametrize("scenario", CLASSES)
def test_failure_classes_inside_the_built_image(
    rendered: Rendered, docker_client: Any, tmp_path: Path, scenario: str
) -> None:
    from tests.doctor.conftest import Node, build_lib

    node = Node(tmp_path / "node", None)
    nvml_driver, init_rc = "575.57.08", 0
    if scenario == "driver-library-mismatch":
        nvml_driver = "570.153.02"  # the node's driver moved under the pod: NVML is new, libcuda still old
    if scenario == "nvml-unknown-error":
        init_rc = 999  # NVML_ERROR_UNKNOWN, what nvmlInit returns once the device cgroup rules are gone
    node.libcuda(NVIDIA_LIBS, "575.57.08", cuda=12090)
    node.nvml(NVIDIA_LIBS, nvml_driver, cuda=12090, gpu="NVIDIA L4", brand=2, cc=(8, 9), init_rc=init_rc)
    volumes = {str(node.path(NVIDIA_LIBS)): {"bind": NVIDIA_LIBS, "mode": "ro"}}
    environment = {"LD_LIBRARY_PATH": NVIDIA_LIBS}
    # Device nodes: real character devices, made inside the container (as root) with the NVIDIA major.
    # The container's device cgroup does not allow 195:*, so opening them fails: exactly the state a
    # daemon-reload leaves a running GPU container in. Elsewhere they only need to exist.
    mknod = "mknod /dev/nvidiactl c 195 255 && mknod /dev/nvidia0 c 195 0 && mknod /dev/nvidia-uvm c 510 0"
    if scenario != "nvml-unknown-error":
        node.dev_nodes("nvidia0", "nvidiactl", "nvidia-uvm")
        for dev in ("nvidia0", "nvidiactl", "nvidia-uvm"):
            volumes[str(node.path(f"/dev/{dev}"))] = {"bind": f"/dev/{dev}", "mode": "ro"}
        mknod = "true"
    if scenario == "shadowed-by-old-toolkit":
        lib = build_lib(node.path("/usr/local/cuda-12.1/lib64/libcudart.so.12.1.105"), "cudart",
                        soname="libcudart.so.12")  # fmt: skip
        node.path("/usr/local/cuda-12.1/lib64/libcudart.so.12").symlink_to(lib.name)
        volumes[str(node.path("/usr/local/cuda-12.1/lib64"))] = {
            "bind": "/usr/local/cuda-12.1/lib64",
            "mode": "ro",
        }
        environment["LD_LIBRARY_PATH"] = f"/usr/local/cuda-12.1/lib64:{NVIDIA_LIBS}"
    if scenario == "cpu-only-jax":
        # jax and jaxlib without a CUDA plugin, next to the image's own packages.
        for rel in ("jax", "jax-0.7.2.dist-info", "jaxlib-0.7.2.dist-info"):
            d = node.path(f"/site/{rel}")
            d.mkdir(parents=True)
            if rel.endswith(".dist-info"):
                name, version = rel.removesuffix(".dist-info").split("-")
                (d / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
            volumes[str(d)] = {"bind": f"{VENV_SITE}/{rel}", "mode": "ro"}
    if scenario == "empty-element":
        environment["LD_LIBRARY_PATH"] = f"{NVIDIA_LIBS}:"
    status, report = _doctor_in_image(
        docker_client,
        rendered.child["tag"],
        ["sh", "-c", f"{mknod} && exec imagesmith doctor --json"],
        volumes,
        environment,
        user="0",  # mknod
    )
    found = {f["code"]: f for f in report["findings"]}
    if scenario == "shadowed-by-old-toolkit":
        f = found["LIBRARY_SHADOWED"]
        assert "libcudart.so.12 12.1.105 instead of 12.9" in f["message"], f
        assert f["fix"].startswith(
            f"Remove /usr/local/cuda-12.1/lib64 from LD_LIBRARY_PATH: ENV LD_LIBRARY_PATH={NVIDIA_LIBS}"
        )
        assert report["driver"]["runtime_version"] == "12.1.105", report["driver"]
    elif scenario == "driver-library-mismatch":
        f = found["DRIVER_LIBRARY_MISMATCH"]
        assert "570.153.02" in f["message"] and "575.57.08" in f["message"], f
        assert status == 1
    elif scenario == "nvml-unknown-error":
        f = found["NVML_UNKNOWN_ERROR"]
        assert "Unknown Error" in f["message"], f
        assert any("open(/dev/nvidia0): Operation not permitted" in e for e in f["evidence"]), f
        assert status == 1
    elif scenario == "cpu-only-jax":
        f = found["CPU_ONLY_BUILD"]
        assert "jax 0.7.2 with jaxlib 0.7.2 and no CUDA plugin" in f["message"], f
        assert status == 1
    else:
        f = found["LD_LIBRARY_PATH_EMPTY_ELEMENT"]
        assert f["fix"].startswith(f"ENV LD_LIBRARY_PATH={NVIDIA_LIBS} "), f
