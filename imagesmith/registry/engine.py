"""Read an image's labels and ENV from the local Docker engine with a raw HTTP request.

The fallback of ``imagesmith.registry.facts`` when the registry cannot answer. The docker SDK is not
imported: the doctor runs in slim pods, and one GET over the unix socket is all it needs
(``GET /images/{ref}/json``). Reading an image's configuration is not a build: this is the one reader.
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
            "only unix:// Docker hosts can be read for image facts", where=f"DOCKER_HOST={host}"
        )
    return "/var/run/docker.sock"


def inspect(ref: str) -> tuple[dict[str, str], dict[str, str], str | None]:
    """(labels, env, image ID) of a local image; NegativeAnswer when the engine has no such image,
    EnvironmentProblem when it cannot be reached or answers nonsense (each one line naming ``ref``)."""
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
        raise NegativeAnswer(f"no such local image {ref!r}", hint=f"docker pull {ref}")
    if response.status != 200:
        raise EnvironmentProblem(f"Docker engine answered {response.status} for image {ref!r}")
    try:
        data = json.loads(body)
        config = data.get("Config") or {}
        labels = {str(k): str(v) for k, v in (config.get("Labels") or {}).items()}
        env = dict(str(e).split("=", 1) for e in (config.get("Env") or []) if "=" in str(e))
        image_id = data.get("Id")
    except (ValueError, AttributeError, TypeError) as exc:
        raise EnvironmentProblem(f"unexpected Docker engine answer for {ref!r}: {exc}") from None
    return labels, env, str(image_id) if image_id else None
