"""A local HTTPS Kubernetes API that replays recorded responses (no API server runs on these machines).

``start_replay(directory)`` makes a self-signed certificate with ``openssl``, serves on 127.0.0.1 in a
thread and writes a kubeconfig that points at it (``certificate-authority`` + bearer ``token``). It serves,
from ``fixtures/api/`` (the API server's own shape: ``NodeList``/``PodList``, items without ``kind``, with
``managedFields``):

- ``GET /api/v1/nodes``: paginated with ``limit``/``continue``; the server caps a page at ``page_size``
  (4 by default, so the six recorded nodes come in two pages, as a real server may return fewer than asked);
- ``GET /api/v1/pods`` and ``GET /api/v1/namespaces/{ns}/pods`` (403 for ``forbidden_namespaces``);
- ``GET /api/v1/nodes?watch=true``: chunked, newline-delimited events. The first watch plays
  ``watch-nodes.jsonl`` (MODIFIED, ADDED, DELETED; each applied to the served node list, as a real server
  would), then holds the stream open until ``expire_watch()`` is called, when it sends a 410 ``ERROR`` event
  (``Expired: too old resource version``) and ends; a watch also ends after its ``timeoutSeconds``;
- ``GET /api``, ``/apis``, ``/api/v1``, ``/version``: legacy discovery of the core group (nodes, pods), so the
  real ``kubectl`` can list nodes from it;
- 401 (a ``Status`` body) for a missing or wrong bearer token; 404 for anything else; 405 for any write
  (``writes`` logs them).

Contexts in the kubeconfig: ``replay`` (the default), ``wrong-token`` (401) and ``unreachable`` (a closed port).
``requests`` logs (path, query) for the assertions; ``put_node``/``delete_node`` change the served list
without an event (history a watch missed, which only a re-list can see).
"""

from __future__ import annotations

import base64
import copy
import json
import socket
import ssl
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

API_FIXTURES = Path(__file__).parent / "fixtures" / "api"
TOKEN = "replay-token-7f3c"


# Legacy discovery, as a real server answers it, so that the real kubectl (which maps `get nodes` to its path
# through discovery before it lists) can be pointed at the replay: the core group only, nodes and pods in it.
DISCOVERY: dict[str, dict[str, Any]] = {
    "/api": {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443"}],
    },
    "/apis": {"kind": "APIGroupList", "apiVersion": "v1", "groups": []},
    "/api/v1": {
        "kind": "APIResourceList",
        "groupVersion": "v1",
        "resources": [
            {
                "name": "nodes",
                "singularName": "node",
                "namespaced": False,
                "kind": "Node",
                "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
                "shortNames": ["no"],
            },
            {
                "name": "pods",
                "singularName": "pod",
                "namespaced": True,
                "kind": "Pod",
                "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
                "shortNames": ["po"],
                "categories": ["all"],
            },
        ],
    },
    "/version": {
        "major": "1",
        "minor": "33",
        "gitVersion": "v1.33.4",
        "platform": "linux/amd64",
    },
}


def make_cert(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for localhost and 127.0.0.1: (cert, key); the cert is its own CA."""
    cert, key = directory / "replay.crt", directory / "replay.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def _api_form(obj: dict[str, Any]) -> dict[str, Any]:
    """An object as a list item from the API server: no kind/apiVersion."""
    return {k: v for k, v in obj.items() if k not in ("kind", "apiVersion")}


def _is_watch(query: dict[str, str]) -> bool:
    """``watch`` parsed as the API server does (Go's strconv.ParseBool: older clients send ``True``)."""
    return query.get("watch", "") in ("1", "t", "T", "true", "TRUE", "True")


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}  # fmt: skip


@dataclass
class Replay:
    """A running replay server. ``url``, ``kubeconfig`` (a file with contexts replay/wrong-token/unreachable)."""

    url: str
    kubeconfig: Path
    ca_file: Path
    token: str
    unreachable_url: str
    page_size: int
    forbidden_namespaces: tuple[str, ...]
    nodes: dict[str, dict[str, Any]]
    pods: list[dict[str, Any]]
    list_resource_version: str
    watch_events: list[dict[str, Any]]
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    writes: list[tuple[str, str]] = field(
        default_factory=list
    )  # (method, path) of every non-GET, refused 405
    lock: threading.Lock = field(default_factory=threading.Lock)
    gone: threading.Event = field(default_factory=threading.Event)
    stopped: threading.Event = field(default_factory=threading.Event)
    events_played: bool = False
    server: ThreadingHTTPServer | None = None

    # --- test controls

    def expire_watch(self) -> None:
        """Make the open (or next) watch end with one 410 ERROR event."""
        self.gone.set()

    def put_node(self, node: dict[str, Any]) -> None:
        """Add or replace a served node without a watch event."""
        with self.lock:
            self.nodes[node["metadata"]["name"]] = _api_form(copy.deepcopy(node))

    def delete_node(self, name: str) -> None:
        with self.lock:
            self.nodes.pop(name, None)

    def list_requests(self, path: str) -> list[dict[str, str]]:
        """The queries of the non-watch GETs of ``path``."""
        with self.lock:
            return [q for p, q in self.requests if p == path and not _is_watch(q)]

    def watch_requests(self) -> list[dict[str, str]]:
        with self.lock:
            return [q for p, q in self.requests if p == "/api/v1/nodes" and _is_watch(q)]

    def stop(self) -> None:
        self.stopped.set()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def __enter__(self) -> Replay:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def start_replay(
    directory: Path, *, page_size: int = 4, forbidden_namespaces: tuple[str, ...] = ("kube-system",)
) -> Replay:
    """Start the replay server on 127.0.0.1 (a free port); returns the running ``Replay`` (call ``stop()``)."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = make_cert(directory)
    nodelist = json.loads((API_FIXTURES / "nodelist.json").read_text())
    podlist = json.loads((API_FIXTURES / "podlist.json").read_text())
    events = [
        json.loads(line) for line in (API_FIXTURES / "watch-nodes.jsonl").read_text().splitlines() if line
    ]

    httpd = _Server(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True, do_handshake_on_connect=False)
    port = httpd.server_address[1]
    replay = Replay(
        url=f"https://127.0.0.1:{port}",
        kubeconfig=directory / "kubeconfig",
        ca_file=cert,
        token=TOKEN,
        unreachable_url=f"https://127.0.0.1:{_closed_port()}",
        page_size=page_size,
        forbidden_namespaces=forbidden_namespaces,
        nodes={n["metadata"]["name"]: n for n in nodelist["items"]},
        pods=podlist["items"],
        list_resource_version=nodelist["metadata"]["resourceVersion"],
        watch_events=events,
        server=httpd,
    )
    httpd.replay = replay  # type: ignore[attr-defined]
    _write_kubeconfig(replay)
    threading.Thread(target=httpd.serve_forever, name="k8s-replay", daemon=True).start()
    return replay


def _write_kubeconfig(replay: Replay) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "replay",
                "cluster": {"server": replay.url, "certificate-authority": str(replay.ca_file)},
            },
            {
                "name": "closed",
                "cluster": {"server": replay.unreachable_url, "certificate-authority": str(replay.ca_file)},
            },
        ],
        "users": [
            {"name": "imagesmith", "user": {"token": replay.token}},
            {"name": "intruder", "user": {"token": "not-the-token"}},
        ],
        "contexts": [
            {
                "name": "replay",
                "context": {"cluster": "replay", "user": "imagesmith", "namespace": "default"},
            },
            {"name": "wrong-token", "context": {"cluster": "replay", "user": "intruder"}},
            {"name": "unreachable", "context": {"cluster": "closed", "user": "imagesmith"}},
        ],
        "current-context": "replay",
        "preferences": {},
    }
    replay.kubeconfig.write_text(json.dumps(config, indent=2) + "\n")


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # a client that rejects our certificate or hangs up is part of the tests, not an error to print
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "k8s-replay/1"

    @property
    def replay(self) -> Replay:
        replay: Replay = self.server.replay  # type: ignore[attr-defined]
        return replay

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _send_json(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body, separators=(",", ":")).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Audit-Id", "replay")
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        split = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(split.query).items()}
        replay = self.replay
        with replay.lock:
            replay.requests.append((split.path, query))
        if self.headers.get("Authorization") != f"Bearer {replay.token}":
            self._send_json(401, _status(401, "Unauthorized", "Unauthorized"))
            return
        parts = split.path.strip("/").split("/")
        if split.path in DISCOVERY:
            self._send_json(200, DISCOVERY[split.path])
        elif split.path == "/api/v1/nodes":
            if _is_watch(query):
                self._watch(query)
            else:
                with replay.lock:
                    items = [replay.nodes[n] for n in sorted(replay.nodes)]
                self._list("NodeList", items, query)
        elif split.path == "/api/v1/pods":
            self._list("PodList", replay.pods, query)
        elif len(parts) == 5 and parts[:3] == ["api", "v1", "namespaces"] and parts[4] == "pods":
            namespace = parts[3]
            if namespace in replay.forbidden_namespaces:
                message = (
                    'pods is forbidden: User "system:serviceaccount:imagesmith:fleet" cannot list resource "pods" '
                    f'in API group "" in the namespace "{namespace}"'
                )
                self._send_json(403, _status(403, "Forbidden", message))
                return
            self._list("PodList", [p for p in replay.pods if p["metadata"]["namespace"] == namespace], query)
        else:
            self._send_json(404, _status(404, "NotFound", "the server could not find the requested resource"))

    def _refuse_write(self) -> None:
        # The replay is read-only: a write is logged (so a test can say nothing was applied) and refused.
        with self.replay.lock:
            self.replay.writes.append((self.command, urlsplit(self.path).path))
        self._send_json(405, _status(405, "MethodNotAllowed", "the replay serves reads only"))

    do_POST = do_PUT = do_PATCH = do_DELETE = _refuse_write

    def _list(self, kind: str, items: list[dict[str, Any]], query: dict[str, str]) -> None:
        replay = self.replay
        start = 0
        if query.get("continue"):
            try:
                start = int(json.loads(base64.urlsafe_b64decode(query["continue"]))["start"])
            except (ValueError, KeyError):
                self._send_json(400, _status(400, "BadRequest", "continue key is not valid"))
                return
        limit = int(query.get("limit") or 0) or len(items)
        end = start + min(limit, replay.page_size)
        metadata: dict[str, Any] = {"resourceVersion": replay.list_resource_version}
        if end < len(items):
            token = json.dumps({"v": "meta.k8s.io/v1", "rv": int(replay.list_resource_version), "start": end})
            metadata["continue"] = base64.urlsafe_b64encode(token.encode()).decode()
            metadata["remainingItemCount"] = len(items) - end
        self._send_json(
            200, {"kind": kind, "apiVersion": "v1", "metadata": metadata, "items": items[start:end]}
        )

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _watch(self, query: dict[str, str]) -> None:
        replay = self.replay
        deadline = time.monotonic() + float(query.get("timeoutSeconds") or 1800)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            with replay.lock:
                play = [] if replay.events_played else replay.watch_events
                replay.events_played = True
            for event in play:
                obj = event["object"]
                with replay.lock:
                    if event["type"] == "DELETED":
                        replay.nodes.pop(obj["metadata"]["name"], None)
                    else:
                        replay.nodes[obj["metadata"]["name"]] = _api_form(obj)
                    replay.list_resource_version = obj["metadata"]["resourceVersion"]
                self._chunk(json.dumps(event).encode() + b"\n")
            while time.monotonic() < deadline and not replay.stopped.is_set():
                if replay.gone.wait(0.05):
                    replay.gone.clear()
                    since = query.get("resourceVersion", "0")
                    message = f"too old resource version: {since} ({replay.list_resource_version})"
                    error = {"type": "ERROR", "object": _status(410, "Expired", message)}
                    self._chunk(json.dumps(error).encode() + b"\n")
                    break
            self._chunk(b"")
        except OSError:  # the client went away (Watch.stop shuts its socket)
            self.close_connection = True
