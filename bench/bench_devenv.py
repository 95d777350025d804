"""The dev environment (issue 15) measured on the real engine, side by side with doing it by hand.

A team repository with one small CUDA line (runtime + its devel twin, cuda 12.9 wheels on the debootstrapped
bookworm base; built once with ``imagesmith build``, cached after) and a library project copied from it, as the
tests make them (``tests/devenv/local_kit.py``). Rows:

* ``dev up`` cold: the curated images present, the project's own layers not built (a fresh source file makes
  every project step miss the cache) -> JupyterLab answers ``/api/status`` with the token; against the same by
  hand: ``docker build --target dev`` then ``docker run`` of JupyterLab and polling until it answers;
* ``dev up`` with the image cached (after ``dev down``), and a second ``up`` on the running container, against
  the by-hand ``docker run`` + poll on the same built image;
* sizes: the dev image over the image the project ships, and over the devel base it builds on;
* the gate: ``imagesmith dev gate`` (command) against interpreter start, and ``gate.check`` in process.

Run: ``.venv/bin/python bench/run.py devenv`` (root; the first run builds the curated images, ~5 min).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.common import row  # noqa: E402
from tests import docker_harness  # noqa: E402

EXE = str(Path(sys.executable).with_name("imagesmith"))
CA = Path("/etc/ssl/certs/ca-certificates.crt")


def _dev(project: Path, *args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.perf_counter()
    done = subprocess.run(
        [EXE, "dev", *args], cwd=project, capture_output=True, text=True, timeout=1800, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"imagesmith dev {' '.join(args)}: {done.stderr[-2000:]}")
    return time.perf_counter() - started, done


def _ready(port: int, token: str, deadline: float) -> None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/status", headers={"Authorization": f"token {token}"}
    )
    while time.perf_counter() < deadline:
        try:
            with opener.open(request, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"JupyterLab on {port} did not answer")


def _by_hand_run(client: Any, image: str, project: Path) -> float:
    """`docker run` of the dev image with JupyterLab on a free port and the checkout mounted, polled until ready."""
    from imagesmith.devenv.local import free_port

    port, token = free_port(), uuid.uuid4().hex
    started = time.perf_counter()
    container = client.containers.run(
        image,
        ["jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}", "--ServerApp.root_dir=/app"],
        detach=True,
        network_mode="host",
        environment={"JUPYTER_TOKEN": token},
        volumes={str(project): {"bind": "/app", "mode": "rw"}},
    )
    try:
        _ready(port, token, started + 180)
        return time.perf_counter() - started
    finally:
        container.remove(force=True)


def _by_hand_build(client: Any, project: Path, tag: str, ca_url: str) -> float:
    started = time.perf_counter()
    for chunk in client.api.build(
        path=str(project),
        target="dev",
        tag=tag,
        buildargs={"CA_CERT_URL": ca_url},
        network_mode="host",
        rm=True,
        decode=True,
    ):
        if "error" in chunk:
            raise RuntimeError(chunk["error"])
    return time.perf_counter() - started


def _touch(project: Path, package: str) -> None:
    """A new line in the package: every project step (app and dev stages) misses the layer cache."""
    init = project / "src" / package / "__init__.py"
    text = init.read_text(encoding="utf-8").split("\n# bench ", 1)[0]
    init.write_text(f"{text}\n# bench {uuid.uuid4().hex}\n", encoding="utf-8")


def run() -> list[dict[str, Any]]:
    from imagesmith.devenv.local import find_project
    from tests.devenv import local_kit
    from tests.golden import kit
    from tests.templates.templates_kit import GIT_ENV

    os.environ.update(GIT_ENV)  # the team repository and the project are committed, as the tests do
    engine = docker_harness.engine()
    client = engine.client
    os_base = docker_harness.os_base(client)
    root = Path(tempfile.mkdtemp(prefix="bench-devenv-"))
    project_dir = local_kit.project(root, os_base)
    project = find_project(project_dir)
    rows: list[dict[str, Any]] = []
    _dev(project_dir, "down", "--purge")

    # Cold, twice each way (a fresh source line each time), ours and by hand alternating.
    ours_cold, hand_cold = [], []
    for _ in range(2):
        _touch(project_dir, project.package)
        seconds, _done = _dev(project_dir, "up", "--ca-cert", str(CA))
        ours_cold.append(seconds)
        _dev(project_dir, "down")
        _touch(project_dir, project.package)
        with kit.ca_server() as ca_url:
            build = _by_hand_build(client, project_dir, "bench-devenv/by-hand:dev", ca_url)
        hand_cold.append(build + _by_hand_run(client, "bench-devenv/by-hand:dev", project_dir))
    rows.append(
        row(
            "dev up, cold (project layers not built) -> JupyterLab ready",
            statistics.median(ours_cold),
            "docker build --target dev + docker run + poll /api/status",
            statistics.median(hand_cold),
            f"median of 2 each; the curated images present; ours {', '.join(f'{s:.1f}' for s in ours_cold)} s",
        )
    )

    # Cached: the image built, no container (after `down`); then the second `up` on the running container.
    cached, again = [], []
    # (--ca-cert as this machine's builds need: the CA's URL is stable, so the layer cache holds.)
    for _ in range(3):
        seconds, _done = _dev(project_dir, "up", "--ca-cert", str(CA))
        cached.append(seconds)
        seconds, _done = _dev(project_dir, "up", "--ca-cert", str(CA))
        again.append(seconds)
        _dev(project_dir, "down")
    hand = [_by_hand_run(client, project.image, project_dir) for _ in range(3)]
    rows.append(
        row(
            "dev up, image cached -> JupyterLab ready",
            statistics.median(cached),
            "docker run of the same image + poll /api/status",
            statistics.median(hand),
            "median of 3; ours includes the build's cache check (every step a hit) and a free port and token",
        )
    )
    rows.append(
        row(
            "dev up again (running container)",
            statistics.median(again),
            "docker run of the same image + poll /api/status",
            statistics.median(hand),
            "median of 3: reuses the container, checks it answers, prints the same URL",
        )
    )

    # Sizes: the dev image over the image the project ships and over the devel image it builds on.
    dev_size = int(client.api.inspect_image(project.image)["Size"])
    with kit.ca_server() as ca_url:
        shipped_id = kit.build_project(
            client, project_dir, "bench-devenv/prod:latest", ca_url=ca_url, extras=""
        )
    shipped = int(client.api.inspect_image(shipped_id)["Size"])
    dockerfile = (project_dir / "Dockerfile").read_text(encoding="utf-8")
    devel_ref = next(
        line.split("=", 1)[1] for line in dockerfile.splitlines() if line.startswith("ARG DEV_BASE_IMAGE=")
    )
    devel = int(client.api.inspect_image(devel_ref)["Size"])
    rows.append(
        row(
            "dev image size vs the image the project ships",
            dev_size / 1e6,
            "production image (docker build .)",
            shipped / 1e6,
            f"+{(dev_size - shipped) / 1e6:.0f} MB: the devel base's toolchain + JupyterLab + [dev] extras + git",
            unit="MB",
        )
    )
    rows.append(
        row(
            "dev image size vs the devel image it builds on",
            dev_size / 1e6,
            "the curated devel image (DEV_BASE_IMAGE)",
            devel / 1e6,
            f"+{(dev_size - devel) / 1e6:.0f} MB: JupyterLab, ipykernel, the project and its [dev] extras, git",
            unit="MB",
        )
    )

    # The gate: the command, against interpreter start; and in process.
    gate_cmd = [EXE, "dev", "gate", "--image", devel_ref, "--instance", "g6.xlarge", "--cloud", "aws"]
    times, base = [], []
    for _ in range(11):
        started = time.perf_counter()
        subprocess.run(gate_cmd, cwd=project_dir, capture_output=True, check=False)
        times.append(time.perf_counter() - started)
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], capture_output=True, check=False)
        base.append(time.perf_counter() - started)
    rows.append(
        row(
            "dev gate --image (curated, local engine) --instance g6.xlarge (command)",
            statistics.median(times),
            "python -c pass (interpreter start)",
            statistics.median(base),
            "median of 11; labels from the registry or the engine, the picker's catalog row, the provider data",
        )
    )
    _dev(project_dir, "down", "--purge")
    client.images.remove("bench-devenv/by-hand:dev", force=True)
    return rows


if __name__ == "__main__":
    for row in run():
        print(row)
