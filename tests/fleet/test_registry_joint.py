"""The joint between the fleet and the registry: `imagesmith fleet scan` over recorded nodes and pods whose
images live in a real registry (Debian's docker-registry, images built and pushed by the test on the real
engine, labelled as the curated images are): their labels are read without pulling, and the pod running a
CUDA 13 image on an R535 node is reported at risk."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import docker_harness
from tests.fleet.conftest import FIXTURES, REGISTRY, torch_labels

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory, docker_engine: docker_harness.Engine) -> Iterator[str]:
    root = tmp_path_factory.mktemp("fleet-registry")
    try:
        reg = docker_harness.Registry(root / "r")
    except docker_harness.NoEngine as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set, so the fleet's registry test must run: {exc}")
        pytest.skip(f"no local docker-registry here: {exc}")
    try:
        for variant in ("cu126", "cu128", "cu130"):
            ref = f"{reg.address}/team/torch:2.11-{variant}-runtime"
            ctx = root / variant
            ctx.mkdir()
            (ctx / "marker").write_text(f"fleet joint test {variant}\n")
            labels = " ".join(f'{k}="{v}"' for k, v in torch_labels(variant).items())
            (ctx / "Dockerfile").write_text(f"FROM scratch\nCOPY marker /marker\nLABEL {labels}\n")
            docker_engine.client.images.build(path=str(ctx), tag=ref, rm=True)
            repository, tag = ref.rsplit(":", 1)
            for line in docker_engine.client.api.push(repository, tag=tag, stream=True, decode=True):
                if "error" in line:
                    pytest.fail(f"docker push {ref} failed: {line['error']}")
            # Gone from the engine: the scan can only have read the labels from the registry.
            docker_engine.client.images.remove(ref, force=True)
        yield reg.address
    finally:
        reg.stop()


def test_scan_reads_image_labels_from_the_registry(registry: str, tmp_path: Path) -> None:
    pods: dict[str, Any] = json.loads((FIXTURES / "pods.json").read_text())
    for pod in pods["items"]:
        for c in pod["spec"]["containers"]:
            c["image"] = c["image"].replace(REGISTRY, f"{registry}/team/torch")
        if pod["metadata"]["name"].startswith("finetune"):
            pod["spec"]["nodeName"] = "gpu-a100-535-a"  # a CUDA 13 image running on an R535 node
    pods_file = tmp_path / "pods.json"
    pods_file.write_text(json.dumps(pods))
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    p = subprocess.run(
        [sys.executable, "-m", "imagesmith", "fleet", "scan", "--nodes", str(FIXTURES / "nodes.json"),
         "--pods", str(pods_file), "--json"],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert p.returncode == 1, p.stderr  # something is at risk
    doc = json.loads(p.stdout)
    assert [(a["pod"].split("-")[0], a["node"]) for a in doc["at_risk"]] == [("finetune", "gpu-a100-535-a")]
    assert "DRIVER_TOO_OLD" in doc["at_risk"][0]["codes"]
    trainer = next(w for w in doc["workloads"] if w["name"] == "trainer")
    assert trainer["nodes"] and all(n["verdict"] == "works-with-caveats" for n in trainer["nodes"])
    # busybox and the device plugin are not in this registry: unknown, said so, never a failure.
    plugin = next(w for w in doc["workloads"] if "device-plugin" in w["image"])
    assert all(n["verdict"] == "unknown" and n["codes"] == ["IMAGE_UNREADABLE"] for n in plugin["nodes"])
    cached = list((tmp_path / "cache" / "imagesmith" / "registry").glob("*.json"))
    assert len(cached) == 3  # one config blob per image, cached by digest
