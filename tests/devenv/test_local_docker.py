"""`imagesmith dev up|down|status|logs` on the real engine, in a project generated from the template repository:
the dev stage builds on the curated devel twin of the project's base without changing the image you ship,
JupyterLab answers with a token,
a cell runs in the project's kernel and prints the CUDA runtime the image's label promises, a second `up` is
a no-op, and `down` then `up` keeps the home volume."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from imagesmith.devenv import local
from tests.devenv import local_kit
from tests.golden import kit
from tests.templates.templates_kit import answers

pytestmark = [pytest.mark.docker, pytest.mark.slow]

CELL = (
    "import ctypes, os, importlib.metadata as m\n"
    "import nvidia.cuda_runtime\n"
    f"import {local_kit.PACKAGE}\n"
    "v = ctypes.c_int()\n"
    "lib = ctypes.CDLL(os.path.join(nvidia.cuda_runtime.__path__[0], 'lib', 'libcudart.so.12'))\n"
    "assert lib.cudaRuntimeGetVersion(ctypes.byref(v)) == 0\n"
    f"print('project', {local_kit.PACKAGE}.__name__, {local_kit.PACKAGE}.__file__)\n"
    "print('cudart', v.value // 1000, v.value % 1000 // 10)\n"
)


def default_target(client: Any, project: Path, tag: str, ca_url: str) -> str:
    """`docker build .` with no --target (the classic builder, as the SDK builds): the last stage's image ID."""
    image_id = None
    log = []
    for chunk in client.api.build(
        path=str(project),
        tag=tag,
        buildargs={"CA_CERT_URL": ca_url},
        network_mode="host",
        rm=True,
        decode=True,
    ):
        log.append(str(chunk.get("stream") or chunk.get("error") or ""))
        if "aux" in chunk and isinstance(chunk["aux"], dict) and "ID" in chunk["aux"]:
            image_id = str(chunk["aux"]["ID"])
        assert "error" not in chunk, "".join(log)[-3000:]
    assert image_id, "".join(log)[-3000:]
    return image_id


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, docker_client: Any, os_base: str) -> Iterator[Path]:
    path = local_kit.project(tmp_path_factory.mktemp("devenv"), os_base)
    local_kit.purge(path)  # a container or home volume left by an interrupted earlier run
    yield path
    local_kit.purge(path)


def test_dev_up_runs_jupyterlab_in_the_projects_image(project: Path, docker_client: Any) -> None:
    lab, first = local_kit.up(project)
    assert "ready in" in first.stdout
    # No NVIDIA runtime on this engine: said, not failed.
    assert "runs without GPUs" in first.stderr or "GPUs requested" in first.stderr, first.stderr

    container = docker_client.containers.get(local_kit.CONTAINER)
    attrs = container.attrs
    assert attrs["Config"]["User"] == "1000:1000"
    assert attrs["Config"]["Image"].startswith("sha256:")
    mounts = {m["Destination"]: m for m in attrs["Mounts"]}
    assert mounts["/app"]["Source"] == str(project) and mounts["/app"]["Type"] == "bind"
    assert mounts["/home/app"]["Type"] == "volume" and mounts["/home/app"]["Name"] == local_kit.VOLUME
    if attrs["HostConfig"]["NetworkMode"] == "host":
        assert "--ip=127.0.0.1" in attrs["Config"]["Cmd"]
    else:
        bindings = attrs["HostConfig"]["PortBindings"]["8888/tcp"]
        assert bindings == [{"HostIp": "127.0.0.1", "HostPort": str(lab.port)}]

    # The token is required: without it the API refuses.
    status, _ = local_kit.http(local_kit.Lab(lab.url, lab.port, "wrong"), "/api/status")
    assert status == 403
    status, body = local_kit.http(lab, "/api/status")
    assert status == 200 and "started" in json.loads(body)

    # The project's own environment is the kernel; a cell imports the (editable, mounted) project and
    # prints the CUDA runtime the image's label promises.
    status, body = local_kit.http(lab, "/api/kernelspecs")
    assert local_kit.PACKAGE in json.loads(body)["kernelspecs"]
    code, out = local_kit.run_cell(docker_client, lab, local_kit.PACKAGE, CELL)
    assert code == 0, out
    assert f"project {local_kit.PACKAGE} /app/src/{local_kit.PACKAGE}/__init__.py" in out
    promised = docker_client.images.get(attrs["Config"]["Image"]).labels["io.imagesmith.cuda"]
    assert f"cudart {promised.replace('.', ' ')}" in out, (promised, out)

    # git and the project's [dev] extras are there; the production stage is the base.
    result = container.exec_run(["bash", "-lc", "git --version && pytest --version && ruff --version"])
    assert result.exit_code == 0, result.output.decode()

    # Idempotent: the second `up` reuses the running container and prints the same URL.
    again, second = local_kit.up(project)
    assert again.url == lab.url and "already running" in second.stdout

    state = local_kit.dev("status", cwd=project)
    assert state.returncode == 0, state.stdout + state.stderr
    assert f"{local_kit.CONTAINER}: running since " in state.stdout
    assert container.image.short_id.removeprefix("sha256:") in state.stdout
    assert lab.url in state.stdout
    # The doctor's verdict inside, in one line (no GPU here, so it says so with its reason code).
    doctor = next(line for line in state.stdout.splitlines() if line.startswith("doctor: "))
    assert re.match(r"doctor: (ok|warning|error)( \([A-Z_, ]+\))?$", doctor), doctor

    logs = local_kit.dev("logs", "--tail", "50", cwd=project)
    assert logs.returncode == 0 and "Jupyter Server" in logs.stdout, logs.stdout[-2000:]


def test_down_then_up_keeps_the_home_volume(project: Path, docker_client: Any) -> None:
    lab, _ = local_kit.up(project)
    container = docker_client.containers.get(local_kit.CONTAINER)
    wrote = container.exec_run(["bash", "-c", "echo kept > ~/notes.txt && id -u && echo $HOME"])
    assert wrote.exit_code == 0 and wrote.output.decode().split() == ["1000", "/home/app"]

    down = local_kit.dev("down", cwd=project)
    assert down.returncode == 0 and f"kept: volume {local_kit.VOLUME}" in down.stdout, down.stdout
    assert not docker_client.containers.list(all=True, filters={"name": f"^{local_kit.CONTAINER}$"})
    stopped = local_kit.dev("status", "--no-doctor", cwd=project)
    assert stopped.returncode == 1 and "not running" in stopped.stdout

    again, _ = local_kit.up(project)
    assert again.token != lab.token  # a new container, a new token
    container = docker_client.containers.get(local_kit.CONTAINER)
    read = container.exec_run(["cat", "/home/app/notes.txt"])
    assert read.exit_code == 0 and read.output.decode().strip() == "kept"

    purged = local_kit.dev("down", "--purge", cwd=project)
    assert purged.returncode == 0 and f"volume {local_kit.VOLUME}" in purged.stdout
    assert not docker_client.volumes.list(filters={"name": local_kit.VOLUME})


def test_the_production_image_does_not_change(project: Path, docker_client: Any, tmp_path: Path) -> None:
    """The image you ship is the same with and without the dev stage: the Dockerfile cut at the dev stage
    and the full one (default target, the last stage) give the same image ID, without JupyterLab in it; the dev
    image is on the devel twin, with the toolchain the production image lacks."""
    text = (project / "Dockerfile").read_text(encoding="utf-8")
    marker = "\n# ---- dev: "
    assert marker in text and text.rstrip().endswith("FROM app")
    cut = tmp_path / "production-only"
    shutil.copytree(project, cut, ignore=shutil.ignore_patterns(".git"))
    (cut / "Dockerfile").write_text(text[: text.index(marker)] + "\n", encoding="utf-8")
    with kit.ca_server() as ca_url:
        alone = kit.build_project(
            docker_client, cut, "imagesmith-devenv-test/prod-only:latest", ca_url=ca_url, extras=""
        )
        shipped = default_target(docker_client, project, "imagesmith-devenv-test/prod:latest", ca_url)
    assert shipped == alone
    code, out, err = kit.run(docker_client, shipped, ["-c", "import jupyterlab"], entrypoint=["python"])
    assert code != 0 and "No module named 'jupyterlab'" in err, out + err
    dev_image = docker_client.images.get(local.find_project(project).image)
    production = docker_client.images.get(shipped)
    # The dev image is the curated devel twin of the production base plus its own layers; the devel twin is the
    # production base plus the toolchain. So production and dev share every layer of the curated runtime image.
    recorded = answers(project)
    devel_tag = re.search(r"^ARG DEV_BASE_IMAGE=(\S+)$", text, re.MULTILINE)
    assert devel_tag, "the dev stage names no devel base"
    devel = docker_client.images.get(devel_tag.group(1))
    runtime = docker_client.images.get(recorded["base_image"])
    assert devel.labels["io.imagesmith.variant"] == "devel"
    assert devel.labels["org.opencontainers.image.base.name"] == recorded["base_image"]
    for lower, upper in ((runtime, devel), (devel, dev_image), (runtime, production)):
        below = lower.attrs["RootFS"]["Layers"]
        assert upper.attrs["RootFS"]["Layers"][: len(below)] == below
    # What the devel base adds is in the dev environment and not in the image you ship: the C compiler and the
    # CUDA toolkit's ptxas and headers under CUDA_HOME (PyPI's CUDA 12 compiler wheel has no nvcc driver: the
    # plan promises nvcc for CUDA 13 devel images only).
    toolchain = [
        "bash",
        "-lc",
        'gcc --version && ptxas --version && test -f "$CUDA_HOME/include/cuda_runtime.h"',
    ]
    code, out, err = kit.run(docker_client, dev_image.id, toolchain, entrypoint=[])
    assert code == 0 and "Ptx optimizing assembler" in out, out + err
    code, out, err = kit.run(docker_client, shipped, toolchain, entrypoint=[])
    assert code != 0, out + err
