"""The OCI distribution client against a local HTTP registry speaking the real protocol: a bearer-token
challenge, an image index resolved to linux/amd64, a config blob's labels, 404 as "absent"."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest

from imagesmith.contract.tags import ImageRef
from imagesmith.errors import EnvironmentProblem
from imagesmith.registry.client import Registry

CONFIG = json.dumps({"config": {"Labels": {"io.imagesmith.cuda": "13.0.2"}}}).encode()
CONFIG_DIGEST = "sha256:" + hashlib.sha256(CONFIG).hexdigest()
MANIFEST = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"digest": CONFIG_DIGEST, "size": len(CONFIG)},
        "layers": [{"digest": "sha256:aa", "size": 1000}, {"digest": "sha256:bb", "size": 234}],
    }
).encode()
MANIFEST_DIGEST = "sha256:" + hashlib.sha256(MANIFEST).hexdigest()
INDEX = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"digest": "sha256:arm", "platform": {"os": "linux", "architecture": "arm64"}},
            {"digest": MANIFEST_DIGEST, "platform": {"os": "linux", "architecture": "amd64"}},
        ],
    }
).encode()


class Handler(BaseHTTPRequestHandler):
    tokens: ClassVar[list[str]] = []

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, code: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        port = self.server.server_address[1]
        if self.path.startswith("/token?"):
            Handler.tokens.append(self.path)
            self._send(200, json.dumps({"token": "t0k3n"}).encode())
            return
        if self.headers.get("Authorization") != "Bearer t0k3n":
            challenge = f'Bearer realm="http://127.0.0.1:{port}/token",service="test-registry"'
            self._send(401, b"{}", {"WWW-Authenticate": challenge})
            return
        answers = {
            "/v2/team/torch/manifests/multi": (INDEX, "application/vnd.oci.image.index.v1+json"),
            f"/v2/team/torch/manifests/{MANIFEST_DIGEST}": (
                MANIFEST,
                "application/vnd.oci.image.manifest.v1+json",
            ),
            f"/v2/team/torch/blobs/{CONFIG_DIGEST}": (CONFIG, "application/json"),
        }
        if self.path not in answers:
            self._send(404, b"{}")
            return
        body, media = answers[self.path]
        self._send(200, body, {"Content-Type": media})


@pytest.fixture
def registry() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Handler.tokens = []
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def test_index_resolves_to_amd64_behind_a_bearer_token(registry: str) -> None:
    ref = ImageRef.parse(f"{registry}/team/torch:multi")
    client = Registry.for_ref(ref)
    manifest = client.manifest(ref)
    assert manifest is not None
    assert manifest.digest == MANIFEST_DIGEST and manifest.config_digest == CONFIG_DIGEST
    assert manifest.compressed_size == 1234
    assert client.labels(ref, manifest) == {"io.imagesmith.cuda": "13.0.2"}
    assert Handler.tokens and "scope=repository%3Ateam%2Ftorch%3Apull" in Handler.tokens[0]
    assert "service=test-registry" in Handler.tokens[0]


def test_an_absent_tag_is_none_not_an_error(registry: str) -> None:
    ref = ImageRef.parse(f"{registry}/team/torch:nope")
    assert Registry.for_ref(ref).manifest(ref) is None


def test_an_unreachable_registry_is_an_environment_problem() -> None:
    ref = ImageRef.parse("127.0.0.1:9/team/torch:x")  # discard port: nothing listens
    with pytest.raises(EnvironmentProblem, match="cannot be reached"):
        Registry(ref.registry or "", timeout=2).manifest(ref)
