"""Benchmarks of ``imagesmith build`` on the small curated set (tests/builder/fixtures/small: a Python base
and a child with the CUDA 12.9 runtime from PyPI), on a real engine started by the test harness.

Rows:
* no-op rebuild vs the real alternative, ``docker build`` of the same Dockerfiles with every layer in
  the engine's cache (what a CI script without input hashes pays);
* no-op rebuild vs a cold ``imagesmith build --no-cache`` of the same set;
* per image, two size rows (``unit: "MB"``): the bytes its own layers add vs the Python packages it adds,
  and vs everything it installs (pip packages + Debian packages' Installed-Size + the standard-library
  bytecode their postinst compiles). The second is the overhead ratio the target is about (< 1.15: no
  duplicated CUDA, no apt or pip caches left in layers).

Run: ``.venv/bin/python bench/bench_build.py`` (root, network to Debian and PyPI; ~3 minutes).
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests import docker_harness  # noqa: E402

FIXTURE = REPO / "tests" / "builder" / "fixtures" / "small"
WORK = REPO / "bench" / ".work" / "build"
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
SET = ("base-py3.11-bookworm", "cudart-12.9-py3.11-bookworm")
REPEATS = 3


def _imagesmith(os_base: str, out: str, *extra: str) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "imagesmith",
            "build",
            SET[-1],
            "--plan",
            "plan.json",
            "--base-image",
            f"bookworm={os_base}",
            "--ca-cert",
            str(CA_BUNDLE),
            "--output-dir",
            out,
            *extra,
        ],
        cwd=WORK,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"imagesmith build failed: {proc.stderr.strip()}\n{proc.stdout[-2000:]}")
    return elapsed, json.loads((WORK / out / "manifest.json").read_text())


def _docker_build_cached(client: Any, manifest: dict[str, Any], os_base: str) -> float:
    """The same builds straight through the SDK, same arguments and labels, so every layer is cached."""
    from imagesmith.builder.certserve import CertServer, read_pem
    from imagesmith.contract.labels import INPUT_HASH as HASH_LABEL
    from imagesmith.contract.plan_json import load

    plan = load(WORK / "plan.json").by_name()
    images = {i["name"]: i for i in manifest["images"]}
    started = time.perf_counter()
    with CertServer(read_pem(CA_BUNDLE)) as server:
        for name in SET:
            image = plan[name]
            base = os_base if image.parent is None else plan[image.parent].tag
            stream = client.api.build(
                path=str(image.context),
                dockerfile="Dockerfile",
                buildargs={"BASE_IMAGE": base, "CA_CERT_URL": server.url},
                labels={**image.label_dict, HASH_LABEL: images[name]["input_hash"]},
                network_mode="host",
                tag=image.tag,
                rm=True,
                decode=True,
            )
            for chunk in stream:
                if "error" in chunk:
                    raise RuntimeError(chunk["error"])
    return time.perf_counter() - started


def _dpkg_sizes(client: Any, ref: str) -> dict[str, int]:
    """Debian packages in an image and their Installed-Size in bytes (dpkg's own estimate, KiB)."""
    out = client.containers.run(
        ref,
        ["dpkg-query", "-W", "-f", "${Package}:${Architecture} ${Installed-Size}\\n"],
        entrypoint=[],
        remove=True,
        network_mode="none",
    )
    sizes = {}
    for line in out.decode().splitlines():
        name, _, kib = line.partition(" ")
        sizes[name] = int(kib or 0) * 1024
    return sizes


def _dist_bytecode(client: Any, ref: str) -> int:
    """Bytes of .pyc under /usr/lib/python3*: Debian's postinst compiles them (py3compile), so dpkg's
    Installed-Size leaves them out, yet they are installed content (without them, and with
    PYTHONDONTWRITEBYTECODE=1, every start would recompile the standard library)."""
    out = client.containers.run(
        ref,
        ["sh", "-c", "find /usr/lib/python3* -name '*.pyc' -printf '%s\\n' 2>/dev/null; true"],
        entrypoint=[],
        remove=True,
        network_mode="none",
    )
    return sum(int(n) for n in out.decode().split())


def _overhead_rows(
    client: Any, manifest: dict[str, Any], os_base: str, os_base_size: int
) -> list[dict[str, Any]]:
    rows = []
    images = {i["name"]: i for i in manifest["images"]}
    for image in manifest["images"]:
        parent = images.get(image["parent"] or "")
        inherited = {(p["name"], p["version"]) for p in (parent["packages"] if parent else [])}
        added = sum(p["size"] for p in image["packages"] if (p["name"], p["version"]) not in inherited)
        layers = image["size"] - (parent["size"] if parent else os_base_size)
        before = _dpkg_sizes(client, parent["tag"] if parent else os_base)
        debs = sum(size for name, size in _dpkg_sizes(client, image["tag"]).items() if name not in before)
        parent_pyc = _dist_bytecode(client, parent["tag"] if parent else os_base)
        pyc = max(0, _dist_bytecode(client, image["tag"]) - parent_pyc)
        rows.append(
            {
                "name": f"build: size overhead {image['name']} (Python packages only)",
                "imagesmith_s": round(layers / 1e6, 2),
                "baseline": "Python packages it adds (importlib.metadata file sizes)",
                "baseline_s": round(added / 1e6, 2),
                "ratio": round(layers / added, 3) if added else float("inf"),
                "unit": "MB",
                "note": "own layers vs the Python packages they add"
                + ("; the distribution's Python interpreter is not a pip package" if debs else ""),
            }
        )
        rows.append(
            {
                "name": f"build: size overhead {image['name']} (everything it installs)",
                "imagesmith_s": round(layers / 1e6, 2),
                "baseline": "Python + Debian packages it adds (dpkg Installed-Size + their compiled bytecode)",
                "baseline_s": round((added + debs + pyc) / 1e6, 2),
                "ratio": round(layers / (added + debs + pyc), 3) if added + debs + pyc else float("inf"),
                "unit": "MB",
                "note": f"own layers {layers / 1e6:.1f} MB vs {added / 1e6:.1f} MB pip + {debs / 1e6:.1f} MB apt "
                f"+ {pyc / 1e6:.1f} MB stdlib bytecode; target < 1.15 (no duplicated CUDA, no caches in layers)",
            }
        )
    return rows


def run() -> list[dict[str, Any]]:
    engine = docker_harness.engine()
    try:
        os_base = docker_harness.os_base(engine.client)
        shutil.rmtree(WORK, ignore_errors=True)
        WORK.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(FIXTURE, WORK)
        cold_s, cold = _imagesmith(os_base, "cold", "--no-cache")
        noop_times = [_imagesmith(os_base, f"noop{i}")[0] for i in range(REPEATS)]
        _, noop = _imagesmith(os_base, "noop-last")
        assert all(i["status"] == "unchanged" for i in noop["images"]), noop
        docker_times = [_docker_build_cached(engine.client, cold, os_base) for _ in range(REPEATS)]
        os_base_size = int(engine.client.api.inspect_image(os_base)["Size"])
        overhead = _overhead_rows(engine.client, cold, os_base, os_base_size)
    finally:
        engine.stop()
    noop_s = statistics.median(noop_times)
    docker_s = statistics.median(docker_times)
    return [
        {
            "name": "build: no-op rebuild of the small set",
            "imagesmith_s": round(noop_s, 2),
            "baseline": "docker build of the same Dockerfiles, all layers cached (SDK, classic builder)",
            "baseline_s": round(docker_s, 2),
            "ratio": round(noop_s / docker_s, 3),
            "note": f"median of {REPEATS}; imagesmith includes plan load, hashing, manifest and process start",
        },
        {
            "name": "build: no-op rebuild vs cold build",
            "imagesmith_s": round(noop_s, 2),
            "baseline": "imagesmith build --no-cache (cold: apt + PyPI through the proxy)",
            "baseline_s": round(cold_s, 2),
            "ratio": round(noop_s / cold_s, 4),
            "note": f"no-op median of {REPEATS}, cold built once (it downloads everything)",
        },
        *overhead,
    ]


if __name__ == "__main__":
    for row in run():
        print(json.dumps(row))
