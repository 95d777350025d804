"""End to end on a real engine: the small curated set (tests/builder/fixtures/small) built on a
debootstrapped Debian, smoke-tested with the real doctor, rebuilt as a no-op, and broken on purpose.

Builds go through this machine's TLS-intercepting proxy, so every run passes ``--ca-cert`` with the
host bundle plus a canary certificate made here; the canary proves the certificate never reaches a
layer, the image config or the history.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import docker_harness

pytestmark = [pytest.mark.docker, pytest.mark.slow]

FIXTURE = Path(__file__).parent / "fixtures" / "small"
HOST_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
BASE = "base-py3.11-bookworm"
CUDART = "cudart-12.9-py3.11-bookworm"
BROKEN = "broken-py3.11-bookworm"
LEAF = "broken-leaf-py3.11-bookworm"


def run_build(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "imagesmith", "build", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=1500,
        check=False,
    )


def _pem_bodies(pem: str) -> list[str]:
    """The base64 body of each certificate in a PEM bundle, newlines removed."""
    bodies = []
    for block in pem.split("-----BEGIN CERTIFICATE-----")[1:]:
        body = block.split("-----END CERTIFICATE-----")[0]
        bodies.append("".join(body.split()))
    return bodies


def _canary_bundle() -> tuple[Path, str]:
    """Host bundle + a self-signed canary certificate, cached so the build's CA URL stays stable."""
    directory = docker_harness.cache_dir() / "test-canary"
    directory.mkdir(parents=True, exist_ok=True)
    canary = directory / "canary.pem"
    if not canary.exists():
        openssl = shutil.which("openssl")
        assert openssl, "openssl is needed to make the canary certificate (apt-get install openssl)"
        subprocess.run(
            [
                openssl,
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "3650",
                "-subj",
                "/CN=imagesmith canary CA",
                "-keyout",
                str(directory / "canary.key"),
                "-out",
                str(canary),
            ],
            check=True,
            capture_output=True,
        )
    combined = directory / "bundle.pem"
    text = HOST_BUNDLE.read_text() + "\n" + canary.read_text()
    if not combined.exists() or combined.read_text() != text:
        combined.write_text(text)
    return combined, _pem_bodies(canary.read_text())[0]


def _untag(client: Any, plan: dict[str, Any]) -> None:
    """Remove the fixture's tags so the first run must build; keep layers for the engine's cache."""
    from docker.errors import ImageNotFound

    for image in plan["images"]:
        for ref in (image["tag"], *image["aliases"]):
            with contextlib.suppress(ImageNotFound):
                client.api.remove_image(ref, force=True, noprune=True)


class SmallSet:
    def __init__(self, root: Path, client: Any, os_base: str) -> None:
        self.root = root
        self.client = client
        self.os_base = os_base
        self.bundle, self.canary = _canary_bundle()
        self.plan = json.loads((root / "plan.json").read_text())

    def build(
        self, *images: str, out: str, plan: str = "plan.json", extra: tuple[str, ...] = ()
    ) -> tuple[subprocess.CompletedProcess[str], Any]:
        wheels = sorted(self.root.glob("imagesmith-*.whl"))
        if wheels:
            extra = (*extra, "--imagesmith-wheel", str(wheels[0]))
        proc = run_build(
            *images,
            "--plan",
            plan,
            "--base-image",
            f"bookworm={self.os_base}",
            "--ca-cert",
            str(self.bundle),
            "--output-dir",
            out,
            "--jobs",
            "2",
            *extra,
            cwd=self.root,
        )
        manifest_path = self.root / out / "manifest.json"
        manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else None
        return proc, manifest

    def planned(self, name: str) -> dict[str, Any]:
        return next(i for i in self.plan["images"] if i["name"] == name)


def _by_name(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {image["name"]: image for image in manifest["images"]}


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory, docker_client: Any, os_base: str) -> SmallSet:
    root = tmp_path_factory.mktemp("small") / "base_images"
    shutil.copytree(FIXTURE, root)
    small = SmallSet(root, docker_client, os_base)
    _untag(docker_client, small.plan)
    return small


@pytest.fixture(scope="module")
def cold(small: SmallSet) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    proc, manifest = small.build(CUDART, out="cold")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # The wheel the cold run built from this checkout, reused so that the no-op run compares like
    # with like even while the checkout is being edited.
    wheel = next((small.root / BASE / "wheels").glob("imagesmith-*.whl"))
    shutil.copyfile(wheel, small.root / wheel.name)
    return proc, manifest


@pytest.fixture(scope="module")
def noop(small: SmallSet, cold: Any) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    return small.build(CUDART, out="noop")


def test_cold_build_builds_parent_then_child_and_smoke_tests_them(small: SmallSet, cold: Any) -> None:
    proc, manifest = cold
    images = _by_name(manifest)
    assert list(images) == [BASE, CUDART]  # the named child plus its parent, parents first
    for name, image in images.items():
        assert image["status"] == "built", image
        assert image["tests"] and all(t["ok"] for t in image["tests"]), image["tests"]
        assert (small.root / "cold" / image["log"]).is_file()
        facts = small.client.api.inspect_image(small.planned(name)["tag"])
        assert facts["Id"] == image["image_id"]
        for alias in small.planned(name)["aliases"]:
            assert small.client.api.inspect_image(alias)["Id"] == image["image_id"]
    assert images[CUDART]["parent_id"] == images[BASE]["image_id"]
    # The child inherits its parent's tests: doctor + labels from the base, framework-import its own.
    assert [t["name"] for t in images[CUDART]["tests"]] == ["doctor", "labels", "framework-import"]
    doctor = next(t for t in images[CUDART]["tests"] if t["name"] == "doctor")
    assert "libcudart 12.9." in doctor["detail"]
    assert "built" in proc.stdout and CUDART in proc.stdout  # the summary table


def test_built_images_carry_exactly_the_planned_labels_plus_the_input_hash(
    small: SmallSet, cold: Any
) -> None:
    _, manifest = cold
    for name, image in _by_name(manifest).items():
        labels = small.client.api.inspect_image(image["image_id"])["Config"]["Labels"]
        planned = small.planned(name)["labels"]
        assert labels == {**planned, "io.imagesmith.input-hash": image["input_hash"]}
        assert image["labels"] == labels


def test_manifest_sizes_and_packages_are_measured(small: SmallSet, cold: Any) -> None:
    _, manifest = cold
    images = _by_name(manifest)
    for image in images.values():
        facts = small.client.api.inspect_image(image["image_id"])
        assert image["size"] == facts["Size"]
        assert 0 < image["compressed_size"] < image["size"]
    packages = {p["name"].lower(): p for p in images[CUDART]["packages"]}
    assert packages["nvidia-cuda-runtime-cu12"]["version"] == "12.9.79"
    assert packages["nvidia-cuda-runtime-cu12"]["size"] > 500_000  # libcudart.so.12 alone is ~700 kB
    assert {"imagesmith", "nvidia-ml-py", "packaging"} <= set(packages)
    assert images[CUDART]["compressed_size"] > images[BASE]["compressed_size"]
    markdown = (small.root / "cold" / "manifest.md").read_text()
    assert f"| {CUDART} | built |" in markdown and "nvidia-cuda-runtime-cu12 | 12.9.79" in markdown


def test_compressed_size_is_the_gzip_size_of_the_saved_layers(small: SmallSet, cold: Any) -> None:
    """Recompute independently, with the gzip module over ``docker save``, for the base image."""
    import gzip

    _, manifest = cold
    base = _by_name(manifest)[BASE]
    raw = b"".join(small.client.api.get_image(base["image_id"]))
    with tarfile.open(fileobj=io.BytesIO(raw)) as archive:
        members = {m.name: m for m in archive.getmembers()}
        saved = json.loads(archive.extractfile(members["manifest.json"]).read())  # type: ignore[union-attr]
        total = 0
        for layer in saved[0]["Layers"]:
            data = archive.extractfile(members[layer]).read()  # type: ignore[union-attr]
            total += len(gzip.compress(data, compresslevel=6, mtime=0))
    assert base["compressed_size"] == total


def test_noop_rebuild_skips_everything(small: SmallSet, cold: Any, noop: Any) -> None:
    proc, manifest = noop
    assert proc.returncode == 0, proc.stdout + proc.stderr
    before, after = _by_name(cold[1]), _by_name(manifest)
    for name, image in after.items():
        assert image["status"] == "unchanged", image
        assert image["image_id"] == before[name]["image_id"]
        assert image["tests_cached"] is True
        assert image["compressed_size"] == before[name]["compressed_size"]
        assert "unchanged, not rebuilt" in (small.root / "noop" / image["log"]).read_text()


def _layer_files(client: Any, image_id: str) -> Iterator[tuple[str, bytes]]:
    raw = b"".join(client.api.get_image(image_id))
    with tarfile.open(fileobj=io.BytesIO(raw)) as archive:
        members = {m.name: m for m in archive.getmembers()}
        saved = json.loads(archive.extractfile(members["manifest.json"]).read())  # type: ignore[union-attr]
        for layer_name in saved[0]["Layers"]:
            data = archive.extractfile(members[layer_name]).read()  # type: ignore[union-attr]
            with tarfile.open(fileobj=io.BytesIO(data)) as layer:
                for entry in layer.getmembers():
                    if entry.isfile():
                        yield entry.name, layer.extractfile(entry).read()  # type: ignore[union-attr]


def _proxy_ca_bodies() -> list[str]:
    """Certificates the host added to Debian's Mozilla set: the intercepting proxy's CA(s)."""
    public: set[str] = set()
    for path in Path("/usr/share/ca-certificates/mozilla").glob("*.crt"):
        public.update(_pem_bodies(path.read_text()))
    if not public:
        return []
    return [body for body in _pem_bodies(HOST_BUNDLE.read_text()) if body not in public]


def test_ca_certificate_is_in_no_layer_config_or_history(small: SmallSet, cold: Any) -> None:
    _, manifest = cold
    image_id = _by_name(manifest)[CUDART]["image_id"]
    secrets = [small.canary, *_proxy_ca_bodies()]
    # A certificate body as it would sit in a file: PEM lines of 64 characters, or raw DER.
    needles = [body[64:128].encode() for body in secrets] + [base64.b64decode(small.canary)[:200]]
    bundle_digest = hashlib.sha256(small.bundle.read_bytes()).hexdigest()
    scanned = 0
    for name, content in _layer_files(small.client, image_id):
        scanned += 1
        assert hashlib.sha256(content).hexdigest() != bundle_digest, name
        for needle in needles:
            assert needle not in content, f"certificate content found in layer file {name}"
    assert scanned > 1000  # the scan really walked the filesystem of every layer
    config = json.dumps(small.client.api.inspect_image(image_id))
    history = json.dumps(small.client.api.history(image_id))
    for text in (config, history):
        for needle in needles[:-1]:
            assert needle.decode() not in text
    assert "CA_CERT_URL=http://127.0.0.1:" in history  # only the URL the build fetched from


def test_a_failing_child_loses_nothing_else(small: SmallSet, cold: Any) -> None:
    proc, manifest = small.build(out="failing")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    images = _by_name(manifest)
    assert [images[n]["status"] for n in (BASE, CUDART, BROKEN, LEAF)] == [
        "unchanged",
        "unchanged",
        "failed",
        "skipped",
    ]
    broken = images[BROKEN]
    assert 'RUN echo "this step fails on purpose" >&2 && exit 7' in broken["failed_step"]
    assert "non-zero code: 7" in broken["error"]
    assert images[LEAF]["skipped_because"] == BROKEN
    # The summary names the failed step and shows the log tail; stderr is one line.
    assert f"{BROKEN} failed at Step" in proc.stdout
    assert "this step fails on purpose" in proc.stdout
    assert f"{LEAF} skipped" in proc.stdout
    error_lines = [line for line in proc.stderr.splitlines() if line.startswith("imagesmith: error:")]
    assert len(error_lines) == 1 and BROKEN in error_lines[0], proc.stderr
    assert "this step fails on purpose" in (small.root / "failing" / broken["log"]).read_text()


def test_an_image_failing_its_smoke_test_is_not_tagged(small: SmallSet, cold: Any) -> None:
    plan = json.loads((small.root / "plan.json").read_text())
    wrong = next(i for i in plan["images"] if i["name"] == CUDART)
    wrong.update(tag="imagesmith-test/cudart-wrong:12.4", aliases=[], cuda_runtime="12.4")
    (small.root / "plan-wrong.json").write_text(json.dumps(plan, indent=2))
    proc, manifest = small.build(CUDART, out="wrong", plan="plan-wrong.json")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    image = _by_name(manifest)[CUDART]
    assert image["status"] == "failed"
    assert image["failed_step"] == "smoke test doctor"
    assert "12.9.79" in image["error"] and "12.4" in image["error"]
    from docker.errors import ImageNotFound

    with pytest.raises(ImageNotFound):
        small.client.images.get("imagesmith-test/cudart-wrong:12.4")
