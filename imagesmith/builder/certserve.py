"""Serves the ``--ca-cert`` PEM on 127.0.0.1 for the length of a build (builds use the host network).

The classic builder has no build secrets, so the Dockerfiles fetch the certificate from
``CA_CERT_URL`` and delete it in the same ``RUN``: the bytes never land in a layer, and the history
shows only this URL. The URL (port and path) is derived from the certificate so that it is the same on
every run: the classic builder keys its layer cache on build arguments, and a fresh URL per run would
miss the cache for every step after ``ARG CA_CERT_URL``. A CA certificate is public, so the path only
keeps the URL unique; when the preferred port is taken (a concurrent build) a free one is used.
"""

from __future__ import annotations

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType

from imagesmith.errors import EnvironmentProblem, UsageError

PEM_MARKER = b"-----BEGIN CERTIFICATE-----"


def read_pem(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read CA certificate: {exc.strerror}", where=f"--ca-cert {path}") from None
    if PEM_MARKER not in data:
        raise UsageError("not a PEM certificate (no BEGIN CERTIFICATE line)", where=f"--ca-cert {path}")
    return data


class CertServer:
    """``with CertServer(pem) as server: server.url``; a threaded HTTP server on a free loopback port."""

    def __init__(self, pem: bytes) -> None:
        self.pem = pem
        self.token = hashlib.sha256(pem).hexdigest()[:24]
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/{self.token}/ca.pem"

    def __enter__(self) -> CertServer:
        pem, path = self.pem, f"/{self.token}/ca.pem"

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path != path:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/x-pem-file")
                self.send_header("Content-Length", str(len(pem)))
                self.end_headers()
                self.wfile.write(pem)

            def log_message(self, format: str, *args: object) -> None:
                pass  # the build log records each fetch already

        preferred = 20000 + int(self.token[:8], 16) % 20000
        for port in (preferred, 0):
            try:
                self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
                break
            except OSError as exc:
                if port == 0:
                    raise EnvironmentProblem(f"cannot serve the CA certificate on 127.0.0.1: {exc}") from None
        assert self._server is not None
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="ca-cert", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
