"""The Docker engine edge: connect, build with the classic builder, run a command, inspect, tag, push.

Everything that talks to the engine lives here so that the rest of the build package stays testable
without one. ``DOCKER_HOST`` (and the TLS variables) are honoured through ``docker.from_env``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imagesmith.contract.tags import ImageRef
from imagesmith.errors import EnvironmentProblem

_STEP = re.compile(r"^Step (\d+)/(\d+) : (.*)$")


@dataclass(frozen=True, kw_only=True)
class BuildOutcome:
    image_id: str | None
    error: str | None
    failed_step: str | None
    steps: int


@dataclass(frozen=True, kw_only=True)
class RunOutcome:
    exit_code: int
    stdout: str
    stderr: str


@dataclass(frozen=True, kw_only=True)
class ImageFacts:
    id: str
    labels: dict[str, str]
    size: int
    layers: tuple[str, ...]
    repo_digests: tuple[str, ...]


def engine_address() -> str:
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def connect(timeout: int = 600) -> Any:
    """A docker SDK client that answered a ping, or EnvironmentProblem naming the address tried."""
    import docker
    from docker.errors import DockerException

    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except DockerException as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise EnvironmentProblem(
            f"no Docker engine answers at {engine_address()}: {reason}",
            hint="start dockerd or point DOCKER_HOST at a running engine",
        ) from None
    except OSError as exc:
        raise EnvironmentProblem(f"no Docker engine answers at {engine_address()}: {exc}") from None
    return client


def image_facts(client: Any, ref: str) -> ImageFacts | None:
    """What the engine knows about ``ref`` (a tag or an ID), or None when it has no such image."""
    from docker.errors import ImageNotFound, NotFound

    try:
        attrs = client.api.inspect_image(ref)
    except (ImageNotFound, NotFound):
        return None
    config = attrs.get("Config") or {}
    return ImageFacts(
        id=str(attrs["Id"]),
        labels=dict(config.get("Labels") or {}),
        size=int(attrs.get("Size") or 0),
        layers=tuple((attrs.get("RootFS") or {}).get("Layers") or ()),
        repo_digests=tuple(attrs.get("RepoDigests") or ()),
    )


def build(
    client: Any,
    *,
    context: Path,
    dockerfile: Path,
    build_args: Mapping[str, str],
    labels: Mapping[str, str],
    nocache: bool,
    log: Callable[[str], None],
    on_step: Callable[[int, int], None],
    target: str | None = None,
    tag: str | None = None,
) -> BuildOutcome:
    """Build with the classic builder on the host network; the stream goes to ``log`` line by line.
    ``target`` builds one stage of a multi-stage Dockerfile (``docker build --target``), tagged ``tag``."""
    from docker.errors import APIError, DockerException

    step_text: str | None = None
    steps = 0
    image_id: str | None = None
    error: str | None = None
    try:
        stream: Iterator[dict[str, Any]] = client.api.build(
            path=str(context),
            dockerfile=os.path.relpath(dockerfile, context),
            buildargs=dict(build_args),
            labels=dict(labels),
            nocache=nocache,
            network_mode="host",
            rm=True,
            forcerm=True,
            pull=False,
            decode=True,
            **({"target": target} if target else {}),
            **({"tag": tag} if tag else {}),
        )
        for chunk in stream:
            if "stream" in chunk:
                for line in str(chunk["stream"]).splitlines():
                    if not line.strip():
                        continue  # the classic builder pads every step with blank lines
                    log(line)
                    match = _STEP.match(line)
                    if match:
                        step_text = line
                        steps = int(match.group(2))
                        on_step(int(match.group(1)), steps)
            if "aux" in chunk and isinstance(chunk["aux"], dict) and "ID" in chunk["aux"]:
                image_id = str(chunk["aux"]["ID"])
            if "error" in chunk or "errorDetail" in chunk:
                detail = chunk.get("errorDetail") or {}
                error = str(detail.get("message") or chunk.get("error") or "build failed").strip()
                log(f"ERROR: {error}")
    except (APIError, DockerException) as exc:
        error = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        log(f"ERROR: {error}")
    if error is None and image_id is None:
        error = "the engine reported no image ID"
    return BuildOutcome(
        image_id=None if error else image_id,
        error=error,
        failed_step=step_text if error else None,
        steps=steps,
    )


def run(client: Any, image: str, command: list[str], *, entrypoint: list[str] | None = None) -> RunOutcome:
    """Run ``command`` in a throwaway container without network; stdout and stderr kept apart."""
    container = client.containers.create(
        image, command=command, entrypoint=entrypoint or [], network_mode="none", detach=True
    )
    try:
        container.start()
        status = container.wait()
        stdout = container.logs(stdout=True, stderr=False).decode("utf-8", "replace")
        stderr = container.logs(stdout=False, stderr=True).decode("utf-8", "replace")
    finally:
        container.remove(force=True)
    return RunOutcome(exit_code=int(status.get("StatusCode", -1)), stdout=stdout, stderr=stderr)


def tag(client: Any, image_id: str, refs: tuple[str, ...]) -> None:
    for ref in refs:
        parsed = ImageRef.parse(ref)
        client.api.tag(image_id, parsed.repository, parsed.tag_or_latest, force=True)


def push(client: Any, ref: str, log: Callable[[str], None]) -> str | None:
    """Push ``ref``; returns an error line or None."""
    parsed = ImageRef.parse(ref)
    for chunk in client.api.push(parsed.repository, tag=parsed.tag_or_latest, stream=True, decode=True):
        if "error" in chunk or "errorDetail" in chunk:
            message = str((chunk.get("errorDetail") or {}).get("message") or chunk.get("error"))
            log(f"ERROR: push {ref}: {message}")
            return message
        if "status" in chunk and "progressDetail" not in chunk:
            log(f"push {ref}: {chunk['status']}")
    return None


def pull(client: Any, repository: str, reference: str, log: Callable[[str], None]) -> str | None:
    """Pull ``repository`` at a tag or digest; returns an error line or None."""
    from docker.errors import DockerException

    try:
        for chunk in client.api.pull(repository, tag=reference, stream=True, decode=True):
            if "error" in chunk or "errorDetail" in chunk:
                message = str((chunk.get("errorDetail") or {}).get("message") or chunk.get("error"))
                log(f"ERROR: pull {repository}@{reference}: {message}")
                return message
    except DockerException as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        log(f"ERROR: pull {repository}@{reference}: {first}")
        return first
    log(f"pulled {repository} {reference}")
    return None


def save_stream(client: Any, image_id: str) -> Iterator[bytes]:
    """``docker save`` of one image as a byte stream."""
    stream: Iterator[bytes] = client.api.get_image(image_id, chunk_size=1 << 20)
    return stream
