"""Helpers for the joint tests: a team's template/policy repository, the CLIs run as a user runs them,
project images built on the real engine, and stub GPU driver mounts."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.templates.templates_kit import commit_all, git

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")


def imagesmith(*args: str, cwd: Path, timeout: int = 3000) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VENV_BIN / "imagesmith"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def subprocess_run(args: list[str], *, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=600, check=False)


def copier(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VENV_BIN / "copier"), *args], cwd=cwd, capture_output=True, text=True, timeout=600, check=False
    )


def copy_project(
    team: Path, dst: Path, *, ref: str = "v1", **answers: str
) -> subprocess.CompletedProcess[str]:
    """`copier copy --trust --defaults` from the team's repository at ``ref``, as a user types it."""
    data = [arg for key, value in answers.items() for arg in ("-d", f"{key}={value}")]
    return copier(
        "copy", "--trust", "--defaults", f"--vcs-ref={ref}", *data, str(team), str(dst), cwd=dst.parent
    )


def team_policy(
    registry: str,
    os_base: str,
    *,
    frameworks: str = 'cuda: ["12.9"]',
    fleet: tuple[str, ...] = ('{name: l4, driver: "575.57.08", gpu: L4}',),
    variants: str = "[runtime]",
) -> str:
    """A team's imagesmith.yaml on the debootstrapped OS base, its images named under ``registry``."""
    nodes = "".join(f"  - {node}\n" for node in fleet)
    return (
        f"schema: 1\nregistry: {registry}\nmaintainer: Team <ml-platform@example.com>\nvendor: team\n"
        f'bases:\n  bookworm: {{image: {os_base}, python: "3.11", description: Debian 12 (bookworm)}}\n'
        f'pythons: ["3.11"]\nvariants: {variants}\nframeworks:\n  {frameworks}\nfleet:\n{nodes}'
    )


def team_repository(root: Path, policy: str, *, allow_unlocked: bool = False) -> Path:
    """The team's repository as `imagesmith init --adopt` makes it around the team's policy (pinned to this
    imagesmith, the project templates from the package), its locks (resolved for real against PyPI by uv) and
    its rendered plan, as the team commits them."""
    root.mkdir(parents=True)
    (root / "imagesmith.yaml").write_text(policy, encoding="utf-8")
    adopted = imagesmith("init", str(root), "--adopt", cwd=root.parent)
    assert adopted.returncode in (0, 1), adopted.stdout + adopted.stderr  # 1: rendered below, with its locks
    locked = imagesmith("images", "lock", "--ca-cert", str(HOST_CA), cwd=root)
    # allow_unlocked: images whose index does not answer here stay unlocked (and say so), the rest lock.
    assert locked.returncode == 0 or allow_unlocked, locked.stdout + locked.stderr
    rendered = imagesmith("images", "render", *(["--allow-unlocked"] if allow_unlocked else []), cwd=root)
    assert rendered.returncode == 0, rendered.stdout + rendered.stderr
    git(root, "init", "-q", "-b", "main")
    commit_all(root, "team policy and templates")
    return root


def plan(root: Path) -> dict[str, Any]:
    data = json.loads((root / "base_images" / "plan.json").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def try_build_project(
    client: Any,
    project: Path,
    tag: str,
    *,
    ca_url: str,
    extras: str = "[dev]",
    nocache: bool = False,
    **build_args: str,
) -> tuple[str | None, str]:
    """``docker build`` of a generated project (classic builder, host network for pip): the image ID (None
    when the build failed) and the build's output."""
    log: list[str] = []
    image_id = None
    # target="app": the image you ship. The classic builder (the SDK's) would otherwise also build the
    # Dockerfile's `dev` stage (JupyterLab), which every stage before the last is; the image is the same.
    for chunk in client.api.build(
        path=str(project),
        tag=tag,
        target="app",
        buildargs={"PROJECT_EXTRAS": extras, "CA_CERT_URL": ca_url, **build_args},
        network_mode="host",
        nocache=nocache,
        rm=True,
        forcerm=True,
        decode=True,
    ):
        if "stream" in chunk:
            # The classic builder colours a step's stderr (ESC[91m ... ESC[0m): keep the text only.
            log.append(re.sub(r"\x1b\[[0-9;]*m", "", str(chunk["stream"])))
        if "aux" in chunk and isinstance(chunk["aux"], dict) and "ID" in chunk["aux"]:
            image_id = str(chunk["aux"]["ID"])
        if "error" in chunk:
            log.append(f"ERROR: {chunk['error']}\n")
            return None, "".join(log)
    return image_id, "".join(log)


def refused_by_the_guard(client: Any, project: Path, tag: str) -> list[str]:
    """Build the project, expecting the curated image's pins to refuse it: the guard's lines."""
    with ca_server() as ca_url:
        image, log = try_build_project(client, project, tag, ca_url=ca_url)
    assert image is None, log[-3000:]
    return [line for line in log.splitlines() if line.startswith("imagesmith: ")]


def build_project(
    client: Any, project: Path, tag: str, *, ca_url: str, extras: str = "[dev]", nocache: bool = False
) -> str:
    """``docker build`` of a generated project; the image ID (a failed build fails the test, with its log)."""
    image_id, log = try_build_project(client, project, tag, ca_url=ca_url, extras=extras, nocache=nocache)
    assert image_id, f"project build failed:\n{log[-4000:]}"
    return image_id


def add_dependency(project: Path, requirement: str) -> None:
    """Add a requirement to the generated project's pyproject.toml, as its author would."""
    path = project / "pyproject.toml"
    text = path.read_text(encoding="utf-8")
    marker = "dependencies = ["
    assert marker in text, text
    path.write_text(text.replace(marker, f'{marker}"{requirement}", ', 1), encoding="utf-8")


def run(
    client: Any,
    image: str,
    command: list[str],
    *,
    entrypoint: list[str] | None = None,
    volumes: dict[str, dict[str, str]] | None = None,
    user: str | None = None,
    timeout: int = 600,
) -> tuple[int, str, str]:
    """Run a container to completion without network; (exit code, stdout, stderr)."""
    kwargs: dict[str, Any] = {"network_mode": "none", "volumes": volumes or {}, "detach": True}
    if entrypoint is not None:
        kwargs["entrypoint"] = entrypoint
    if user is not None:
        kwargs["user"] = user
    container = client.containers.run(image, command, **kwargs)
    try:
        status = container.wait(timeout=timeout)["StatusCode"]
        out = container.logs(stdout=True, stderr=False).decode("utf-8", "replace")
        err = container.logs(stdout=False, stderr=True).decode("utf-8", "replace")
    finally:
        container.remove(force=True)
    return int(status), out, err


def project_tests(client: Any, image: str, project: Path) -> tuple[int, str]:
    """The project's own test suite inside its image (the tests mounted read-only, as CI would copy them)."""
    volumes = {str(project / "tests"): {"bind": "/app/tests", "mode": "ro"}}
    code, out, err = run(
        client,
        image,
        ["-m", "pytest", "-q", "-p", "no:cacheprovider", "/app/tests"],
        entrypoint=["python"],
        volumes=volumes,
    )
    return code, out + err


def gpu_node_mounts(tmp: Path, *, driver: str, cuda: int, gpu: str, cc: tuple[int, int]) -> dict[str, Any]:
    """Stub libcuda/NVML compiled here, mounted where the NVIDIA container runtime mounts the real ones."""
    from tests.doctor.conftest import Node

    node = Node(tmp, None)
    node.libcuda("/usr/local/nvidia/lib64", driver, cuda=cuda)
    node.nvml("/usr/local/nvidia/lib64", driver, cuda=cuda, gpu=gpu, brand=2, cc=cc)
    node.dev_nodes("nvidia0", "nvidiactl", "nvidia-uvm")
    volumes = {str(node.path("/usr/local/nvidia/lib64")): {"bind": "/usr/local/nvidia/lib64", "mode": "ro"}}
    for dev in ("nvidia0", "nvidiactl", "nvidia-uvm"):
        volumes[str(node.path(f"/dev/{dev}"))] = {"bind": f"/dev/{dev}", "mode": "ro"}
    return volumes


@contextmanager
def ca_server() -> Iterator[str]:
    """This machine's TLS-intercepting proxy CA, served for project builds only (never in a layer)."""
    from imagesmith.builder.certserve import CertServer, read_pem

    with CertServer(read_pem(HOST_CA)) as server:
        yield server.url


def env_without_ci() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "CI"}
