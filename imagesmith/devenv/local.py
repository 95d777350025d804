"""The local dev environment: the project's ``dev`` stage built and run on the local Docker engine.

One container per project (``imagesmith-dev-<slug>``), the project mounted at its path in the image (the
image's WORKDIR, ``/app``), the home of the image's non-root user a named volume
(``imagesmith-dev-<slug>-home``, kept by ``down``), JupyterLab bound to 127.0.0.1 with a random token.
The image build goes through ``imagesmith.builder.engine`` (the one package that builds on the engine);
this module starts, inspects and stops the container.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imagesmith.errors import EnvironmentProblem, NegativeAnswer, UsageError

ANSWERS_FILE = ".copier-answers.yml"
HOME = "/home/app"  # the curated images' non-root user `app` (uid 1000), created in the base image
JUPYTER_PORT = 8888  # inside the container, when the engine publishes ports
LABEL_PROJECT = "io.imagesmith.dev.project"
LABEL_PORT = "io.imagesmith.dev.port"
LABEL_NETWORK = "io.imagesmith.dev.network"


@dataclass(frozen=True, kw_only=True)
class Project:
    root: Path
    slug: str
    package: str
    registry: str = "registry.example.com/ml"  # the image_registry answer: where the project's images go

    @property
    def container(self) -> str:
        return f"imagesmith-dev-{self.slug}"

    @property
    def volume(self) -> str:
        return f"imagesmith-dev-{self.slug}-home"

    @property
    def image(self) -> str:
        """The dev image under the name the remote targets pull (deploy/dev/: push this tag to use them)."""
        from imagesmith.devenv.remote import dev_image_ref

        return dev_image_ref(self.registry, self.slug)


@dataclass(frozen=True, kw_only=True)
class UpResult:
    url: str
    container: str
    image_id: str
    volume: str
    gpus: bool
    reused: bool
    seconds: float
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Status:
    container: str
    state: str  # running | exited | created | absent
    image_id: str | None = None
    url: str | None = None
    port: int | None = None
    started_at: str | None = None
    gpus: bool = False
    volume: str | None = None
    doctor: str | None = None  # one line: the doctor's verdict inside the container
    notes: tuple[str, ...] = field(default_factory=tuple)


def find_project(start: Path) -> Project:
    """The generated project that ``start`` is in (its ``.copier-answers.yml``), or UsageError naming it."""
    import yaml

    here = start.resolve()
    for folder in (here, *here.parents):
        answers = folder / ANSWERS_FILE
        if answers.is_file():
            break
    else:
        raise UsageError(
            f"not inside a generated project: no {ANSWERS_FILE} in {here} or above",
            hint="run `imagesmith dev` in a project made with `copier copy` from the imagesmith template",
        )
    try:
        data = yaml.safe_load(answers.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise UsageError(f"cannot read the answers: {exc}", where=str(answers)) from None
    slug = data.get("project_slug") if isinstance(data, dict) else None
    if not isinstance(slug, str) or not slug:
        raise UsageError("no project_slug in the answers", where=str(answers))
    package = data.get("package_name") if isinstance(data, dict) else None
    if not (folder / "Dockerfile").is_file():
        raise UsageError("the project has no Dockerfile", where=str(folder / "Dockerfile"))
    registry = data.get("image_registry") if isinstance(data, dict) else None
    return Project(
        root=folder,
        slug=slug,
        package=str(package or slug.replace("-", "_")),
        registry=str(registry or "registry.example.com/ml"),
    )


def connect() -> Any:
    from imagesmith.builder.engine import connect as engine_connect

    return engine_connect()


def engine_gpus(client: Any) -> tuple[bool, str]:
    """(GPUs can be requested, why): the engine must know the NVIDIA runtime (or CDI GPU devices)."""
    info = client.info()
    runtimes = set((info.get("Runtimes") or {}).keys())
    cdi = [d for d in info.get("DiscoveredDevices") or [] if "nvidia.com/gpu" in str(d.get("ID", ""))]
    if "nvidia" in runtimes or cdi:
        return True, "GPUs requested (--gpus all)"
    return False, (
        "no NVIDIA runtime on this Docker engine (runtimes: "
        f"{', '.join(sorted(runtimes)) or 'none'}): the dev container runs without GPUs"
    )


def _has_bridge(client: Any) -> bool:
    return bool(client.networks.list(names=["bridge"]))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _container(client: Any, name: str) -> Any | None:
    from docker.errors import NotFound

    try:
        return client.containers.get(name)
    except NotFound:
        return None


def _env(container: Any) -> dict[str, str]:
    pairs = (item.partition("=") for item in container.attrs.get("Config", {}).get("Env") or [])
    return {key: value for key, _, value in pairs}


def _url(container: Any) -> tuple[str, int]:
    port = int(container.labels.get(LABEL_PORT, "0"))
    token = _env(container).get("JUPYTER_TOKEN", "")
    return f"http://127.0.0.1:{port}/lab?token={token}", port


def jupyter_ready(port: int, token: str) -> bool:
    """Jupyter answers ``/api/status`` with the token (HTTP 200 and JSON)."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/status", headers={"Authorization": f"token {token}"}
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through a proxy
    try:
        with opener.open(request, timeout=3) as response:
            json.loads(response.read())
            return int(response.status) == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _wait_ready(container: Any, port: int, token: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if jupyter_ready(port, token):
            return
        container.reload()
        if container.status in ("exited", "dead"):
            tail = container.logs(tail=5).decode("utf-8", "replace").strip().splitlines()
            raise NegativeAnswer(
                f"the dev container {container.name} exited before JupyterLab answered",
                hint=f"last log line: {tail[-1] if tail else 'none'}; see `imagesmith dev logs`",
            )
        time.sleep(0.5)
    raise NegativeAnswer(
        f"JupyterLab in {container.name} did not answer /api/status within {timeout:.0f} s",
        hint="see `imagesmith dev logs`",
    )


def build(client: Any, project: Project, *, ca_cert: bytes | None, log: Callable[[str], None]) -> str:
    """``docker build --target dev`` of the project; the image ID, or NegativeAnswer with the failed step."""
    from imagesmith.builder import engine
    from imagesmith.builder.certserve import CertServer

    with contextlib.ExitStack() as stack:
        build_args: dict[str, str] = {}
        if ca_cert is not None:
            build_args["CA_CERT_URL"] = stack.enter_context(CertServer(ca_cert)).url
        outcome = engine.build(
            client,
            context=project.root,
            dockerfile=project.root / "Dockerfile",
            build_args=build_args,
            labels={},
            nocache=False,
            log=log,
            on_step=lambda _step, _total: None,
            target="dev",
            tag=project.image,
        )
    if outcome.image_id is None:
        raise NegativeAnswer(
            f"the dev image did not build: {outcome.error}",
            where=outcome.failed_step,
            hint="the Dockerfile needs the `dev` stage (copier update from a template that has it)",
        )
    return outcome.image_id


def up(
    project: Project,
    *,
    ca_cert: bytes | None = None,
    timeout: float = 180.0,
    log: Callable[[str], None] = lambda _line: None,
    progress: Callable[[str], None] = lambda _line: None,
) -> UpResult:
    """Build the dev image, start its container (or reuse the running one) and wait for JupyterLab."""
    started = time.monotonic()
    client = connect()
    existing = _container(client, project.container)
    if existing is not None and existing.status == "running":
        url, port = _url(existing)
        _wait_ready(existing, port, _env(existing).get("JUPYTER_TOKEN", ""), timeout)
        return UpResult(
            url=url,
            container=project.container,
            image_id=str(existing.image.id),
            volume=project.volume,
            gpus=bool(existing.attrs.get("HostConfig", {}).get("DeviceRequests")),
            reused=True,
            seconds=time.monotonic() - started,
        )
    progress(f"{project.container}: building {project.image} (docker build --target dev) ...")
    image_id = build(client, project, ca_cert=ca_cert, log=log)
    progress(f"{project.container}: starting JupyterLab ...")
    if existing is not None:  # stopped or never started: the home volume keeps the user's files
        existing.remove(force=True)
    gpus, gpu_note = engine_gpus(client)
    notes = [gpu_note]
    config = client.api.inspect_image(image_id).get("Config") or {}
    workdir = str(config.get("WorkingDir") or "/app")
    token = secrets.token_hex(24)
    port = free_port()
    kwargs: dict[str, Any] = {
        "name": project.container,
        "detach": True,
        "environment": {"JUPYTER_TOKEN": token},
        "volumes": {
            str(project.root): {"bind": workdir, "mode": "rw"},
            project.volume: {"bind": HOME, "mode": "rw"},
        },
        "labels": {LABEL_PROJECT: str(project.root), LABEL_PORT: str(port)},
    }
    if gpus:
        from docker.types import DeviceRequest

        kwargs["device_requests"] = [DeviceRequest(count=-1, capabilities=[["gpu"]])]
    if _has_bridge(client):
        kwargs["ports"] = {f"{JUPYTER_PORT}/tcp": ("127.0.0.1", port)}
        kwargs["labels"][LABEL_NETWORK] = "bridge"
    else:
        # An engine without its default bridge (dockerd --bridge=none) cannot publish ports: the container
        # shares the host's network and JupyterLab listens on the host's 127.0.0.1 only.
        kwargs["network_mode"] = "host"
        kwargs["labels"][LABEL_NETWORK] = "host"
        kwargs["command"] = [
            "jupyter",
            "lab",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={port}",
            f"--ServerApp.root_dir={workdir}",
        ]
        notes.append("the engine has no bridge network: host network, JupyterLab listens on 127.0.0.1 only")
    container = client.containers.run(image_id, **kwargs)
    _wait_ready(container, port, token, timeout)
    return UpResult(
        url=f"http://127.0.0.1:{port}/lab?token={token}",
        container=project.container,
        image_id=image_id,
        volume=project.volume,
        gpus=gpus,
        reused=False,
        seconds=time.monotonic() - started,
        notes=tuple(notes),
    )


@dataclass(frozen=True, kw_only=True)
class PushResult:
    ref: str  # <image_registry>/<slug>-dev:<version>, what deploy/dev/ pulls
    image_id: str
    digest: str | None  # the manifest digest the registry answers for the tag after the push


def push(
    project: Project,
    *,
    ca_cert: bytes | None = None,
    log: Callable[[str], None] = lambda _line: None,
    progress: Callable[[str], None] = lambda _line: None,
) -> PushResult:
    """Build the dev image (the layer cache makes this a no-op after ``up``) and push it under the name the
    remote targets pull, so that ``deploy/dev/`` and the gate (``dev up --target ... --built``) find it."""
    from imagesmith.builder import engine
    from imagesmith.contract.tags import ImageRef

    client = connect()
    progress(f"building {project.image} (docker build --target dev) ...")
    image_id = build(client, project, ca_cert=ca_cert, log=log)
    progress(f"pushing {project.image} ...")
    error = engine.push(client, project.image, log)
    if error is not None:
        host = ImageRef.parse(project.image).registry or "docker.io"
        raise EnvironmentProblem(
            f"push of {project.image} failed: {error}",
            where=f"{ANSWERS_FILE}: image_registry",
            hint=f"log in to {host} (docker login {host}), or answer another image_registry with copier update",
        )
    return PushResult(ref=project.image, image_id=image_id, digest=_pushed_digest(client, project.image))


def _pushed_digest(client: Any, ref: str) -> str | None:
    """The registry's digest of ``ref`` as the engine recorded it on push (RepoDigests)."""
    from imagesmith.contract.tags import ImageRef

    repository = ImageRef.parse(ref).repository
    for entry in client.api.inspect_image(ref).get("RepoDigests") or []:
        name, _, digest = str(entry).partition("@")
        if name == repository and digest:
            return digest
    return None


def down(project: Project, *, purge: bool = False) -> list[str]:
    """Stop and remove the container; ``purge`` removes the home volume too. What was removed."""
    from docker.errors import NotFound

    client = connect()
    removed: list[str] = []
    container = _container(client, project.container)
    if container is not None:
        container.remove(force=True)
        removed.append(f"container {project.container}")
    if purge:
        try:
            client.volumes.get(project.volume).remove(force=True)
            removed.append(f"volume {project.volume}")
        except NotFound:
            pass
    return removed


def doctor_summary(container: Any) -> str:
    """``imagesmith doctor --json`` inside the running container, in one line."""
    result = container.exec_run(["imagesmith", "doctor", "--json"], demux=True)
    out = (result.output[0] or b"").decode("utf-8", "replace")
    try:
        data = json.loads(out)
    except ValueError:
        err = (result.output[1] or b"").decode("utf-8", "replace").strip().splitlines()
        return f"doctor did not answer (exit {result.exit_code}): {err[-1] if err else 'no output'}"
    findings = data.get("findings") or [] if isinstance(data, dict) else []
    codes = [str(f.get("code")) for f in findings if isinstance(f, dict) and f.get("severity") != "info"]
    status = str(data.get("status", "?")) if isinstance(data, dict) else "?"
    return f"{status}" + (f" ({', '.join(codes)})" if codes else "")


def status(project: Project, *, doctor: bool = True) -> Status:
    client = connect()
    container = _container(client, project.container)
    if container is None:
        return Status(container=project.container, state="absent", volume=project.volume)
    url, port = _url(container)
    running = container.status == "running"
    return Status(
        container=project.container,
        state=str(container.status),
        image_id=str(container.image.id),
        url=url if running else None,
        port=port,
        started_at=str(container.attrs.get("State", {}).get("StartedAt") or "") or None,
        gpus=bool(container.attrs.get("HostConfig", {}).get("DeviceRequests")),
        volume=project.volume,
        doctor=doctor_summary(container) if running and doctor else None,
    )


def logs(project: Project, *, follow: bool = False, tail: int | str = "all") -> Iterator[bytes]:
    client = connect()
    container = _container(client, project.container)
    if container is None:
        raise EnvironmentProblem(
            f"no dev container {project.container} on this engine", hint="start it with `imagesmith dev up`"
        )
    if follow:
        yield from container.logs(stream=True, follow=True, tail=tail)
    else:
        yield container.logs(tail=tail)
