"""Read an image's labels and ENV from the local Docker engine with a raw HTTP request.

The docker SDK is not imported: the doctor runs in slim pods, and one GET over the unix socket is all
it needs (``GET /images/{ref}/json``).
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import urllib.parse

from imagesmith.errors import EnvironmentProblem, NegativeAnswer

API_TIMEOUT_S = 10.0


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=API_TIMEOUT_S)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(API_TIMEOUT_S)
        sock.connect(self._path)
        self.sock = sock


def socket_path() -> str:
    host = os.environ.get("DOCKER_HOST", "")
    if host.startswith("unix://"):
        return host[len("unix://") :]
    if host:
        raise EnvironmentProblem(
            "only unix:// Docker hosts are supported by the doctor", where=f"DOCKER_HOST={host}"
        )
    return "/var/run/docker.sock"


def inspect(ref: str) -> dict[str, object]:
    """{"ref", "labels", "env"} of a local image; EnvironmentProblem if the engine is unreachable."""
    path = socket_path()
    conn = _UnixConnection(path)
    try:
        conn.request("GET", f"/images/{urllib.parse.quote(ref, safe='')}/json")
        response = conn.getresponse()
        body = response.read()
    except OSError as exc:
        raise EnvironmentProblem(
            f"Docker engine unreachable at {path}: {exc.strerror or exc}",
            hint="start dockerd or set DOCKER_HOST",
        ) from None
    finally:
        conn.close()
    if response.status == 404:
        raise NegativeAnswer(f"no such local image {ref!r}", where="--image", hint=f"docker pull {ref}")
    if response.status != 200:
        raise EnvironmentProblem(f"Docker engine answered {response.status} for image {ref!r}")
    try:
        data = json.loads(body)
        config = data.get("Config") or {}
        labels = config.get("Labels") or {}
        env = dict(e.split("=", 1) for e in (config.get("Env") or []) if "=" in e)
    except (ValueError, AttributeError) as exc:
        raise EnvironmentProblem(f"unexpected Docker engine answer for {ref!r}: {exc}") from None
    return {"ref": ref, "labels": labels, "env": env}
