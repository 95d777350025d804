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


@pytest.mark.docker
@pytest.mark.slow
def test_rendered_policy_builds_and_smoke_tests(tmp_path: Path, docker_client: Any, os_base: str) -> None:
    (tmp_path / "imagesmith.yaml").write_text(POLICY)
    rendered = imagesmith("images", "render", cwd=tmp_path)
    assert rendered.returncode == 0, rendered.stderr
    plan = json.loads((tmp_path / "base_images" / "plan.json").read_text())
    names = [image["name"] for image in plan["images"]]
    assert names == ["base-py3.11-bookworm", "cuda-12.9-py3.11-bookworm-runtime"]

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
    child = plan["images"][1]
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
