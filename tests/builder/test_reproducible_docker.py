"""Proof of reproducibility: one policy, locked once, built twice from its lock with the cache disabled.
The two builds install the same package sets (names, versions, and the hashes of the installed files),
`images diff` says so, the image ships its lock, its constraints and its SBOM, and the CA certificate the
build used is in no layer of the result."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from imagesmith.builder import sbom
from imagesmith.contract import pins
from tests.builder.test_build_docker import _layer_files, _proxy_ca_bodies
from tests.builder.test_rendered_set_docker import POLICY as RENDERED_POLICY
from tests.builder.test_rendered_set_docker import imagesmith

HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")
# The rendered-set test's policy, under a registry name of its own (both build in one engine).
POLICY = RENDERED_POLICY.replace("localhost/imagesmith-e2e", "localhost/imagesmith-repro")
CHILD = "cuda-12.9-py3.11-bookworm-runtime"
BASE = "base-py3.11-bookworm"


@pytest.fixture(scope="module")
def twice(tmp_path_factory: pytest.TempPathFactory, docker_client: Any, os_base: str) -> Path:
    root = tmp_path_factory.mktemp("repro")
    (root / "imagesmith.yaml").write_text(POLICY)
    locked = imagesmith("images", "lock", "--ca-cert", str(HOST_CA), cwd=root)
    assert locked.returncode == 0, locked.stdout + locked.stderr
    assert imagesmith("images", "render", cwd=root).returncode == 0
    for run in ("first", "second"):
        built = imagesmith(
            "build", "--no-cache", "--base-image", f"bookworm={os_base}", "--ca-cert", str(HOST_CA),
            "--output-dir", run, cwd=root,
        )  # fmt: skip
        assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-2000:]
    return root


def _images(root: Path, run: str) -> dict[str, Any]:
    return {i["name"]: i for i in json.loads((root / run / "manifest.json").read_text())["images"]}


@pytest.mark.docker
@pytest.mark.slow
def test_two_uncached_builds_from_the_lock_install_the_same_packages(twice: Path) -> None:
    first, second = _images(twice, "first"), _images(twice, "second")
    for name in (BASE, CHILD):
        assert first[name]["status"] == second[name]["status"] == "built"
        assert first[name]["image_id"] != second[name]["image_id"]  # really built twice (timestamps differ)
        sets = []
        for run in (first, second):
            text = (twice / ("first" if run is first else "second") / run[name]["sbom"]["path"]).read_text()
            sets.append({(p.kind, p.name, p.version, p.digest) for p in sbom.read_packages(text)})
        assert sets[0] == sets[1]
        if name == CHILD:  # the child's own package, with the hash of its installed files
            assert any(
                kind == "python" and n == "nvidia-cuda-runtime-cu12" and d for kind, n, _v, d in sets[0]
            )
    diff = imagesmith("images", "diff", "first/manifest.json", "second/manifest.json", cwd=twice)
    assert diff.returncode == 0, diff.stdout + diff.stderr
    assert f"{CHILD}: no changes" in diff.stdout and f"{BASE}: no changes" in diff.stdout


@pytest.mark.docker
@pytest.mark.slow
def test_the_image_ships_its_locks_constraints_and_sbom(twice: Path, docker_client: Any) -> None:
    child = _images(twice, "second")[CHILD]
    image = docker_client.images.get(child["image_id"])
    env = dict(item.split("=", 1) for item in image.attrs["Config"]["Env"])
    assert env["PIP_CONSTRAINT"] == env["UV_CONSTRAINT"] == pins.CONSTRAINTS_PATH
    assert image.labels["io.imagesmith.sbom"] == "/opt/imagesmith/sbom.cdx.json"
    out = docker_client.containers.run(
        child["image_id"],
        ["sh", "-c", f"cat {pins.CONSTRAINTS_PATH}; echo ---; ls {pins.LOCKS_DIR}; ls /tmp"],
        remove=True,
        network_mode="none",
    ).decode()
    constraints, listing = out.split("---\n")
    installed = {p.key: p.version for p in pins.parse_constraints(constraints, "image")}
    locked: dict[str, str] = {}
    for name in (BASE, CHILD):
        path = twice / "base_images" / name / "requirements.lock"
        lock = pins.parse_lock(path.read_text(), str(path))
        locked |= {p.key: p.version for p in lock.pins}
    child_lock = pins.parse_lock((twice / "base_images" / CHILD / "requirements.lock").read_text(), CHILD)
    assert image.labels["io.imagesmith.lock"] == child_lock.digest
    assert {k: v for k, v in installed.items() if k != "imagesmith"} == locked  # exactly the locks
    assert listing.split() == [f"{BASE}.lock", f"{CHILD}.lock"]  # the locks ship; the SBOM tool does not
    sbom_text = docker_client.containers.run(
        child["image_id"], ["cat", "/opt/imagesmith/sbom.cdx.json"], remove=True, network_mode="none"
    ).decode()
    assert sbom_text == (twice / "second" / child["sbom"]["path"]).read_text()
    assert "cyclonedx" not in {p.name.lower().split("-")[0] for p in sbom.read_packages(sbom_text)}


@pytest.mark.docker
@pytest.mark.slow
def test_the_build_ca_is_in_no_layer_of_a_locked_image(twice: Path, docker_client: Any) -> None:
    image_id = _images(twice, "second")[CHILD]["image_id"]
    bundle_digest = hashlib.sha256(HOST_CA.read_bytes()).hexdigest()
    needles = [body[64:128].encode() for body in _proxy_ca_bodies()]
    scanned = 0
    for name, content in _layer_files(docker_client, image_id):
        scanned += 1
        assert hashlib.sha256(content).hexdigest() != bundle_digest, name
        for needle in needles:
            assert needle not in content, f"the build's CA is in layer file {name}"
    assert scanned > 1000


@pytest.mark.docker
@pytest.mark.slow
def test_diff_reads_images_from_the_local_engine(twice: Path) -> None:
    first, second = _images(twice, "first"), _images(twice, "second")
    same = imagesmith("images", "diff", first[CHILD]["image_id"], second[CHILD]["image_id"], cwd=twice)
    assert same.returncode == 0 and "no changes" in same.stdout, same.stdout + same.stderr
    # The base against its child: what the child adds, read from the SBOMs the two images carry.
    grown = imagesmith(
        "images", "diff", "--json", second[BASE]["image_id"], second[CHILD]["image_id"], cwd=twice
    )
    assert grown.returncode == 1, grown.stdout + grown.stderr
    import json as _json

    image = _json.loads(grown.stdout)["images"][0]
    assert image["compatibility"]["CUDA"] == {"old": None, "new": "12.9"}
    added = {(p["kind"], p["name"]) for p in image["packages"]["added"]}
    assert ("python", "nvidia-cuda-runtime-cu12") in added
    assert image["size"]["delta"] and image["size"]["delta"] > 0
