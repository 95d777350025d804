"""The golden path measured on real framework images: the embedded default's images that PyPI alone can
build (torch's PyPI-default CUDA 13 build, JAX cuda12, TensorFlow, runtime + devel each), built cold,
smoke-tested and pushed to a local registry (Debian's docker-registry), then rebuilt as a no-op, then a
project copied from the template and built FROM the torch image.

Rows:
* per image: cold build time (build + smoke tests + push) — for the torch runtime also against the real
  alternative side by side, a plain ``docker build --no-cache`` + ``docker push`` of the same Dockerfile;
* per image: own layers vs everything it installs (pip + apt + the stdlib bytecode their postinst
  compiles; target <= 1.05: no duplicated CUDA, no caches) and compressed (registry) vs uncompressed size;
* the no-op rebuild of the whole set vs its cold build (target <= 5 %);
* ``copier copy`` -> project image built, end to end, vs the ``docker build`` of that project alone.

Run: ``.venv/bin/python bench/run.py golden`` (root; downloads ~10 GB from PyPI; 20-40 minutes).
``IMAGESMITH_BENCH_IMAGES=torch`` limits the set to one framework's images.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.bench_build import _dist_bytecode, _dpkg_sizes  # noqa: E402
from tests import docker_harness  # noqa: E402

WORK = REPO / "bench" / ".work" / "golden"
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
EXE = str(Path(sys.executable).with_name("imagesmith"))


def _policy(registry: str, os_base: str) -> str:
    text = (REPO / "examples" / "team" / "imagesmith.yaml").read_text(encoding="utf-8")
    text = text.replace("registry: ghcr.io/acme/ml", f"registry: {registry}/acme/ml")
    return text.replace("image: docker.io/library/debian:bookworm-slim", f"image: {os_base}")


def _buildable(plan: dict[str, Any], only: str | None) -> list[str]:
    """Images PyPI alone can build: no --extra-index-url (the PyTorch index is not reachable here)."""
    names = []
    for image in plan["images"]:
        text = (WORK / "base_images" / image["dockerfile"]).read_text(encoding="utf-8")
        framework = (image.get("framework") or {}).get("name")
        if "--extra-index-url" in text:
            continue
        if image["parent"] and image["parent"] not in names:
            continue
        if only and framework not in (None, only):
            continue
        names.append(image["name"])
    return names


def _imagesmith(*args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.perf_counter()
    done = subprocess.run([EXE, *args], cwd=WORK, capture_output=True, text=True, check=False)
    return time.perf_counter() - started, done


def _manifest(out: str) -> dict[str, dict[str, Any]]:
    data = json.loads((WORK / out / "manifest.json").read_text(encoding="utf-8"))
    return {i["name"]: i for i in data["images"]}


def _plain_docker(client: Any, image: dict[str, Any], parent_tag: str, ca_url: str, registry: str) -> float:
    """The real alternative: docker build --no-cache of the same Dockerfile, then docker push."""
    tag = f"{registry}/plain/{image['name']}:bench"
    started = time.perf_counter()
    for chunk in client.api.build(
        path=str(WORK / "base_images" / image["context"]),
        buildargs={"BASE_IMAGE": parent_tag, "CA_CERT_URL": ca_url},
        network_mode="host",
        tag=tag,
        nocache=True,
        rm=True,
        decode=True,
    ):
        if "error" in chunk:
            raise RuntimeError(chunk["error"])
    for chunk in client.api.push(tag.rsplit(":", 1)[0], tag="bench", stream=True, decode=True):
        if "error" in chunk:
            raise RuntimeError(chunk["error"])
    elapsed = time.perf_counter() - started
    client.images.remove(tag, force=True)
    return elapsed


def _size_rows(client: Any, manifest: dict[str, dict[str, Any]], os_base: str) -> list[dict[str, Any]]:
    rows = []
    os_size = int(client.api.inspect_image(os_base)["Size"])
    for name, image in manifest.items():
        parent = manifest.get(image["parent"] or "")
        inherited = {(p["name"], p["version"]) for p in (parent["packages"] if parent else [])}
        pip = sum(p["size"] for p in image["packages"] if (p["name"], p["version"]) not in inherited)
        parent_ref = parent["tag"] if parent else os_base
        before = _dpkg_sizes(client, parent_ref)
        debs = sum(s for n, s in _dpkg_sizes(client, image["tag"]).items() if n not in before)
        pyc = max(0, _dist_bytecode(client, image["tag"]) - _dist_bytecode(client, parent_ref))
        own = image["size"] - (parent["size"] if parent else os_size)
        installed = pip + debs + pyc
        rows.append(
            {
                "name": f"golden: own layers vs installed, {name}",
                "imagesmith_s": round(own / 1e6, 1),
                "baseline": "pip + apt (Installed-Size) + stdlib bytecode it adds",
                "baseline_s": round(installed / 1e6, 1),
                "ratio": round(own / installed, 3) if installed else float("inf"),
                "unit": "MB",
                "note": f"{pip / 1e6:.0f} MB pip + {debs / 1e6:.0f} MB apt + {pyc / 1e6:.1f} MB pyc; target <= 1.05",
            }
        )
        if image.get("compressed_size"):
            rows.append(
                {
                    "name": f"golden: compressed vs uncompressed, {name}",
                    "imagesmith_s": round(image["compressed_size"] / 1e6, 1),
                    "baseline": "uncompressed image size (engine)",
                    "baseline_s": round(image["size"] / 1e6, 1),
                    "ratio": round(image["compressed_size"] / image["size"], 3),
                    "unit": "MB",
                    "note": f"sum of the pushed layers' sizes in the registry; cold build {image['seconds']:.0f} s",
                }
            )
    return rows


def _project_rows(client: Any, base_image: str, ca_url: str) -> list[dict[str, Any]]:
    from tests.golden.kit import build_project, copy_project, team_repository
    from tests.templates.templates_kit import git

    team = WORK / "team"
    shutil.rmtree(team, ignore_errors=True)
    team_repository(team, (WORK / "imagesmith.yaml").read_text(encoding="utf-8"))
    git(team, "tag", "v1")
    project = WORK / "project"
    shutil.rmtree(project, ignore_errors=True)
    started = time.perf_counter()
    copied = copy_project(
        team,
        project,
        project_type="batch",
        project_name="Bench Batch",
        framework="torch",
        base_image=base_image,
    )
    if copied.returncode != 0:
        raise RuntimeError(copied.stderr)
    copy_s = time.perf_counter() - started
    build_project(client, project, "bench-batch:1", ca_url=ca_url, extras="", nocache=True)
    end_to_end = time.perf_counter() - started
    client.images.remove("bench-batch:1", force=True)
    build_started = time.perf_counter()
    build_project(client, project, "bench-batch:2", ca_url=ca_url, extras="", nocache=True)
    build_only = time.perf_counter() - build_started
    client.images.remove("bench-batch:2", force=True)
    return [
        {
            "name": "golden: copier copy -> project image built (batch FROM the torch image)",
            "imagesmith_s": round(end_to_end, 2),
            "baseline": "docker build --no-cache of the same project alone (the curated image local)",
            "baseline_s": round(build_only, 2),
            "ratio": round(end_to_end / build_only, 3),
            "note": f"copier copy {copy_s:.1f} s of it; the build installs the project with pip as root",
        }
    ]


def _noop_row(count: int, noop_s: float, cold_s: float, how: str) -> dict[str, Any]:
    return {
        "name": f"golden: no-op rebuild of {count} images vs their cold build",
        "imagesmith_s": round(noop_s, 2),
        "baseline": "imagesmith build --no-cache --push (cold: PyPI, apt, smoke tests, push)",
        "baseline_s": round(cold_s, 2),
        "ratio": round(noop_s / cold_s, 5),
        "note": f"{how}; target <= 5 %; the no-op finds each tag's input hash in the registry",
    }


def _build_rows(
    everything: dict[str, dict[str, Any]], built: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    """One row per image: its cold build (build + smoke tests + push), or how it failed."""
    rows = []
    for name, image in everything.items():
        ok = name in built
        rows.append(
            {
                "name": f"golden: {'cold build' if ok else 'FAILED'} {name}",
                "imagesmith_s": round(image["seconds"], 1),
                "baseline": "-",
                "baseline_s": round(image["seconds"], 1) or 1.0,
                "ratio": 1.0,
                "note": f"{image['size'] / 1e9:.2f} GB; build + smoke tests ({len(image['tests'])}) + push"
                if ok
                else f"{image['status']}: {image.get('failed_step') or image.get('skipped_because')}"[:200],
            }
        )
    return rows


def reuse() -> list[dict[str, Any]]:
    """Rows from the manifests a previous run left in bench/.work/golden (IMAGESMITH_BENCH_REUSE=1):
    the cold and no-op builds as measured then, the size accounting read again from the images still
    in the engine. Rows needing a fresh side-by-side run (plain docker, the project) are not produced."""
    engine = docker_harness.engine()
    try:
        os_base = docker_harness.os_base(engine.client)
        everything = _manifest("cold")
        noop = _manifest("noop")
        manifest = {n: i for n, i in everything.items() if i["status"] in ("built", "unchanged")}
        everything = {n: dict(i) for n, i in everything.items()}
        for image in manifest.values():  # the registry's tags were dropped with it: use the image IDs
            image["tag"] = image["image_id"]
        rows = _build_rows(everything, manifest)
        cold_s = sum(i["seconds"] for i in manifest.values())
        noop_s = sum(i["seconds"] for n, i in noop.items() if n in manifest)
        rows.append(
            _noop_row(len(manifest), noop_s, cold_s, "sums of per-image times from the two manifests")
        )
        rows += _size_rows(engine.client, manifest, os_base)
        torch_rt = next(
            (i for n, i in everything.items() if n.startswith("torch-") and n.endswith("-runtime")), None
        )
        if torch_rt is not None and engine.client.images.list(name=torch_rt["tag"].rsplit(":", 1)[0]):
            from imagesmith.builder.certserve import CertServer, read_pem

            with CertServer(read_pem(CA_BUNDLE)) as server:
                rows += _project_rows(engine.client, torch_rt["tag"], server.url)
        return rows
    finally:
        engine.stop()


def run() -> list[dict[str, Any]]:
    if os.environ.get("IMAGESMITH_BENCH_REUSE"):
        return reuse()
    from imagesmith.builder.certserve import CertServer, read_pem

    only = os.environ.get("IMAGESMITH_BENCH_IMAGES") or None
    engine = docker_harness.engine()
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    registry = docker_harness.Registry(WORK)
    try:
        os_base = docker_harness.os_base(engine.client)
        (WORK / "imagesmith.yaml").write_text(_policy(registry.address, os_base), encoding="utf-8")
        # The checkout's locks (the registry and OS base image are not lock inputs); the PyTorch-index
        # images have none here and stay unlocked, and _buildable leaves them out anyway.
        for lock in (REPO / "examples" / "team" / "base_images").glob("*/requirements.lock"):
            (WORK / "base_images" / lock.parent.name).mkdir(parents=True, exist_ok=True)
            shutil.copy(lock, WORK / "base_images" / lock.parent.name / lock.name)
        _, rendered = _imagesmith("images", "render", "--allow-unlocked")
        if rendered.returncode != 0:
            raise RuntimeError(rendered.stdout + rendered.stderr)
        plan = json.loads((WORK / "base_images" / "plan.json").read_text(encoding="utf-8"))
        names = _buildable(plan, only)
        common = ("--push", "--ca-cert", str(CA_BUNDLE), "--jobs", "1")
        cold_s, cold = _imagesmith("build", *names, *common, "--no-cache", "--output-dir", "cold")
        if cold.returncode not in (0, 1):
            raise RuntimeError(cold.stdout[-3000:] + cold.stderr)
        everything = _manifest("cold")
        manifest = {n: i for n, i in everything.items() if i["status"] in ("built", "unchanged")}
        names = [n for n in names if n in manifest]
        noop_s, noop = _imagesmith("build", *names, *common, "--output-dir", "noop")
        if noop.returncode != 0:
            raise RuntimeError(noop.stdout[-3000:] + noop.stderr)
        assert all(i["status"] == "unchanged" for i in _manifest("noop").values())
        rows = _build_rows(everything, manifest)
        torch_rt = next((i for i in plan["images"] if i["name"] in manifest and i["variant"] == "runtime"
                         and (i.get("framework") or {}).get("name") == "torch"), None)  # fmt: skip
        with CertServer(read_pem(CA_BUNDLE)) as server:
            if torch_rt is not None:
                parent_tag = next(i["tag"] for i in plan["images"] if i["name"] == torch_rt["parent"])
                plain = _plain_docker(engine.client, torch_rt, parent_tag, server.url, registry.address)
                ours = manifest[torch_rt["name"]]["seconds"]
                rows.append(
                    {
                        "name": f"golden: cold build vs plain docker, {torch_rt['name']}",
                        "imagesmith_s": round(ours, 1),
                        "baseline": "docker build --no-cache + docker push of the same Dockerfile",
                        "baseline_s": round(plain, 1),
                        "ratio": round(ours / plain, 3),
                        "note": "imagesmith adds the smoke tests (doctor, import, versions, duplicates) and inventory",
                    }
                )
                rows += _project_rows(engine.client, torch_rt["tag"], server.url)
        rows.append(_noop_row(len(names), noop_s, cold_s, "wall time of both commands"))
        rows += _size_rows(engine.client, manifest, os_base)
        return rows
    finally:
        registry.stop()
        shutil.rmtree(WORK / "data", ignore_errors=True)  # the pushed blobs: ~20 GB for the whole set
        engine.stop()


if __name__ == "__main__":
    for row in run():
        print(json.dumps(row))
