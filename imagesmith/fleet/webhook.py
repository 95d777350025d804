"""The admission webhook: a validating ``admission.k8s.io/v1`` endpoint that refuses (or warns about) a pod spec
whose image cannot run on any node its selector, affinity and tolerations allow.

The decision is ``scan.admit`` (the fleet core's); this module is the envelope around it:

- ``Webhook.review(body)``: bytes of an ``AdmissionReview`` in, ``(HTTP status, JSON object)`` out. Malformed
  reviews (not JSON, another apiVersion/kind, no ``request``/``uid``/``object``) are a 400 with a JSON error
  body, never an answer: the API server then applies the configuration's ``failurePolicy``. DELETE/CONNECT,
  subresources, kinds without a pod spec and UPDATEs that leave the pod spec unchanged are allowed untouched.
  Judging runs under a deadline below the API server's ``timeoutSeconds``; an exception or an overrun follows
  the webhook's own failure policy (Fail: refused with a 500 status; Ignore: allowed with a warning) and is
  logged as one line naming the review's uid.
- ``make_server``/``serve``: HTTPS (TLS 1.2+) on a ``ThreadingHTTPServer``. The TLS handshake runs in the
  connection's thread under the socket timeout, so a silent client holds only its own thread; bodies over
  ``max_body`` bytes are answered 413 unread; ``GET /healthz`` and ``/readyz`` answer probes. The certificate
  and key are re-read when their files change (a rotated Secret), at most every few seconds.

Node facts come from a zero-argument callable returning the current node JSON list (``cluster.NodeCache``'s
``snapshot``, fed by list + watch, or a file read once); they are converted with ``gfd.node_facts`` once per
node uid and resourceVersion.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from imagesmith.errors import EnvironmentProblem, UsageError
from imagesmith.fleet.gfd import NodeFacts, node_facts
from imagesmith.fleet.scan import Admission, Fleet, Judge, admit
from imagesmith.fleet.workloads import pod_spec_of

if TYPE_CHECKING:
    from collections.abc import Callable

API_VERSION = "admission.k8s.io/v1"
KIND = "AdmissionReview"
MODES = ("deny", "warn")
FAILURE_POLICIES = ("Fail", "Ignore")
MAX_BODY = 3 * 1024 * 1024  # an object is at most ~1.5 MiB in etcd; a review carries object and oldObject
DEADLINE_S = 4.0  # below the configuration's default timeoutSeconds (5)
IO_TIMEOUT_S = 10.0  # per socket operation: the handshake, reading the body, writing the answer
WARNING_CHARS = 256  # the API server may truncate longer warnings
MAX_WARNINGS = 10
PATH = "/validate"
UNJUDGED = ("DELETE", "CONNECT")


class Malformed(ValueError):
    """Not an admission.k8s.io/v1 AdmissionReview request: answered 400."""


def _log_stderr(line: str) -> None:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    print(f"{stamp} imagesmith-webhook: {line}", file=sys.stderr, flush=True)


def _warning(text: str) -> str:
    """One line of at most WARNING_CHARS characters (the API server's limit)."""
    line = " ".join(text.split())
    return line if len(line) <= WARNING_CHARS else line[: WARNING_CHARS - 1] + "…"


def _timeout_param(query: str) -> float | None:
    """The API server's ``?timeout=5s`` (its own deadline for this call), in seconds."""
    for part in query.split("&"):
        key, _, value = part.partition("=")
        if key == "timeout" and value.endswith("s") and not value.endswith("ms"):
            try:
                return float(value[:-1])
            except ValueError:
                return None
    return None


class NodeView:
    """NodeFacts of the current node list, each converted once per (uid, resourceVersion).

    ``version`` (optional, e.g. ``NodeCache.version``) changes whenever the list does: while it stays the same,
    the last facts are reused without looking at the list.
    """

    def __init__(
        self, source: Callable[[], list[dict[str, Any]]], version: Callable[[], object] | None = None
    ) -> None:
        self._source = source
        self._version = version
        self._seen: object = object()
        self._lock = threading.Lock()
        self._last_items: list[dict[str, Any]] | None = None
        self._last: list[NodeFacts] = []
        self._fleet = Fleet(())
        self._by_key: dict[tuple[str, str], NodeFacts] = {}

    def fleet(self) -> Fleet:
        """The current nodes in scheduling classes, rebuilt only when the list changes: a review then costs a
        few placement checks per class, not one per node (5,000 nodes: ~64 ms per review before, see bench)."""
        self.facts()
        return self._fleet

    def facts(self) -> list[NodeFacts]:
        seen = self._version() if self._version is not None else None  # read before the list: never stale
        if seen is not None and seen == self._seen:
            return self._last
        items = self._source()
        with self._lock:
            if items is self._last_items:
                return self._last
            by_key: dict[tuple[str, str], NodeFacts] = {}
            out = []
            for item in items:
                meta = item.get("metadata") or {}
                version = str(meta.get("resourceVersion") or "")
                key = (str(meta.get("uid") or meta.get("name") or ""), version)
                found = self._by_key.get(key) if version else None
                if found is None:
                    found = node_facts(item)
                by_key[key] = found
                out.append(found)
            self._by_key, self._last_items, self._last, self._seen = by_key, items, out, seen
            self._fleet = Fleet(out)
            return out


class Webhook:
    """AdmissionReview bytes in, (HTTP status, JSON object) out; thread-safe."""

    def __init__(
        self,
        nodes: Callable[[], list[dict[str, Any]]],
        judge: Judge,
        *,
        nodes_version: Callable[[], object] | None = None,
        mode: str = "deny",
        failure_policy: str = "Fail",
        deadline_s: float = DEADLINE_S,
        workers: int = 8,
        log: Callable[[str], None] = _log_stderr,
    ) -> None:
        if mode not in MODES:
            raise UsageError(f"unknown mode {mode!r} (deny or warn)", where="--mode")
        if failure_policy not in FAILURE_POLICIES:
            raise UsageError(
                f"unknown failure policy {failure_policy!r} (Fail or Ignore)", where="--failure-policy"
            )
        if not deadline_s > 0:
            raise UsageError(f"the deadline must be positive, not {deadline_s}", where="--deadline")
        self.nodes = NodeView(nodes, nodes_version)
        self.judge = judge
        self.mode = mode
        self.failure_policy = failure_policy
        self.deadline_s = deadline_s
        self.log = log
        # Judging may read a registry: it runs in a bounded pool so that the answer can leave at the deadline
        # (the late verdict still lands in the judge's cache for the next review of that image).
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="imagesmith-judge")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    # --- the decision

    def decide(self, spec: dict[str, Any]) -> Admission:
        return admit(spec, self.nodes.fleet(), self.judge)

    def review(self, body: bytes, *, deadline_s: float | None = None) -> tuple[int, dict[str, Any]]:
        """(HTTP status, JSON body): 200 with an AdmissionReview, or 400 with ``{"error", "code"}``."""
        uid = "?"
        try:
            request = parse(body)
            uid = str(request["uid"])
            return self._review(request, uid, deadline_s)
        except Malformed as exc:
            self.log(f"uid={uid} malformed review: {exc}")
            return 400, {"error": str(exc), "code": 400}
        except Exception as exc:  # a bug of ours, on a well-formed review: the failure policy decides
            return 200, self._failed(uid, "the object", f"{type(exc).__name__}: {' '.join(str(exc).split())}")

    def _review(
        self, request: dict[str, Any], uid: str, deadline_s: float | None
    ) -> tuple[int, dict[str, Any]]:
        operation = str(request.get("operation") or "")
        what = _describe(request)
        if operation in UNJUDGED:
            return 200, response(uid, allowed=True, message=f"{operation} is not judged")
        if request.get("subResource"):
            return 200, response(
                uid, allowed=True, message=f"subresource {request['subResource']} is not judged"
            )
        obj = request.get("object")
        if not isinstance(obj, dict):
            raise Malformed(f"request.object is missing or not an object ({operation or 'no operation'})")
        found = _pod_spec(obj, request)
        if found is None:
            return 200, response(uid, allowed=True, message=f"{what}: no pod spec")
        spec, _kind = found
        if operation == "UPDATE" and isinstance(request.get("oldObject"), dict):
            old = _pod_spec(request["oldObject"], request)
            if old is not None and old[0] == spec:
                return 200, response(uid, allowed=True, message=f"{what}: pod spec unchanged")
        limit = self.deadline_s if deadline_s is None else max(0.05, min(self.deadline_s, deadline_s))
        future = self._pool.submit(self.decide, spec)
        try:
            decision = future.result(timeout=limit)
        except FutureTimeout:
            future.cancel()  # still queued behind slow judgements: drop it; one that runs fills the cache
            return 200, self._failed(uid, what, f"judging took longer than {limit:g}s")
        except Exception as exc:
            return 200, self._failed(uid, what, f"{type(exc).__name__}: {' '.join(str(exc).split())}")
        warnings = list(decision.warnings)
        if decision.allowed:
            return 200, response(uid, allowed=True, message="", warnings=warnings)
        if self.mode == "warn":
            self.log(f"uid={uid} {what}: warned: {decision.message}")
            return 200, response(
                uid, allowed=True, message=decision.message, warnings=[decision.message, *warnings]
            )
        self.log(f"uid={uid} {what}: denied: {decision.message}")
        return 200, response(uid, allowed=False, http_status=403, message=decision.message, warnings=warnings)

    def _failed(self, uid: str, what: str, why: str) -> dict[str, Any]:
        if self.failure_policy == "Fail":
            self.log(f"uid={uid} {what}: internal error, refused (failure policy Fail): {why}")
            return response(
                uid,
                allowed=False,
                http_status=500,
                message=f"imagesmith webhook could not judge {what}: {why}",
            )
        self.log(f"uid={uid} {what}: internal error, admitted (failure policy Ignore): {why}")
        return response(
            uid,
            allowed=True,
            message="",
            warnings=[f"imagesmith webhook could not judge {what} ({why}); admitted unjudged"],
        )


def parse(body: bytes) -> dict[str, Any]:
    """The ``request`` of an admission.k8s.io/v1 AdmissionReview, or Malformed."""
    try:
        review = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Malformed(f"not JSON: {exc}") from None
    if not isinstance(review, dict):
        raise Malformed("not a JSON object")
    if review.get("apiVersion") != API_VERSION or review.get("kind") != KIND:
        raise Malformed(
            f"expected apiVersion {API_VERSION} kind {KIND}, found {review.get('apiVersion')!r} {review.get('kind')!r}"
        )
    request = review.get("request")
    if not isinstance(request, dict):
        raise Malformed("no request object")
    uid = request.get("uid")
    if not isinstance(uid, str) or not uid:
        raise Malformed("request.uid is missing or empty")
    return request


def response(
    uid: str,
    *,
    allowed: bool,
    message: str,
    http_status: int | None = None,  # the status.code of the answer (an HTTP code, not a reason code)
    warnings: list[str] | tuple[str, ...] = (),
) -> dict[str, Any]:
    """The AdmissionReview answer; warnings one line each, within the API server's limits."""
    answer: dict[str, Any] = {
        "uid": uid,
        "allowed": allowed,
        "status": {"code": http_status if http_status is not None else 200, "message": message},
    }
    if warnings:
        answer["warnings"] = [_warning(w) for w in dict.fromkeys(warnings)][:MAX_WARNINGS]
    return {"apiVersion": API_VERSION, "kind": KIND, "response": answer}


def _pod_spec(obj: dict[str, Any], request: dict[str, Any]) -> tuple[dict[str, Any], str] | None:
    if not obj.get("kind"):  # the API server sends full objects; be lenient with hand-made reviews
        kind = (request.get("kind") or {}).get("kind") if isinstance(request.get("kind"), dict) else None
        obj = {**obj, "kind": kind or ""}
    try:
        found = pod_spec_of(obj)
    except (AttributeError, TypeError):  # e.g. a spec or template that is not an object
        raise Malformed(f"{obj.get('kind')}: the object's spec is not of its kind's shape") from None
    if found is not None and not isinstance(found[0], dict):
        raise Malformed(f"{obj.get('kind')}: the pod spec is not an object")
    return found


def _describe(request: dict[str, Any]) -> str:
    kind = request.get("kind")
    kind_name = kind.get("kind") if isinstance(kind, dict) else None
    obj = request.get("object") if isinstance(request.get("object"), dict) else request.get("oldObject")
    obj = obj if isinstance(obj, dict) else {}
    meta: dict[str, Any] = obj["metadata"] if isinstance(obj.get("metadata"), dict) else {}
    name = request.get("name") or meta.get("name") or meta.get("generateName") or "?"
    namespace = request.get("namespace") or meta.get("namespace") or ""
    return f"{kind_name or obj.get('kind') or 'object'} {namespace + '/' if namespace else ''}{name}"


# ---------------------------------------------------------------------------------------------------------
# HTTPS


class _Tls:
    """The server's TLS context, rebuilt when the certificate or key file changes (checked every few seconds)."""

    def __init__(self, cert: str, key: str, *, reload_s: float = 5.0) -> None:
        self.cert, self.key = cert, key
        self.reload_s = reload_s
        self._lock = threading.Lock()
        self._stamp = self._files_stamp()
        self._context = self._load()
        self._checked = time.monotonic()

    def _files_stamp(self) -> tuple[float, float]:
        try:
            return (os.stat(self.cert).st_mtime, os.stat(self.key).st_mtime)  # noqa: PTH116 - hot path, plain os
        except OSError as exc:
            raise UsageError(f"cannot read: {exc.strerror or exc}", where=exc.filename or self.cert) from None

    def _load(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            context.load_cert_chain(self.cert, self.key)
        except FileNotFoundError as exc:
            raise UsageError("no such file", where=exc.filename or self.cert) from None
        except (ssl.SSLError, OSError) as exc:
            raise UsageError(
                f"not a usable certificate and key: {exc}",
                where=f"--tls-cert {self.cert} --tls-key {self.key}",
            ) from None
        return context

    def context(self) -> ssl.SSLContext:
        now = time.monotonic()
        if now - self._checked < self.reload_s:
            return self._context
        with self._lock:
            self._checked = now
            try:
                stamp = self._files_stamp()
                if stamp != self._stamp:
                    self._context, self._stamp = self._load(), stamp
            except UsageError:
                pass  # a half-written rotation: keep serving the last good pair, check again later
        return self._context


class WebhookServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        webhook: Webhook,
        tls: _Tls,
        *,
        max_body: int = MAX_BODY,
        io_timeout_s: float = IO_TIMEOUT_S,
    ) -> None:
        self.webhook = webhook
        self.tls = tls
        self.max_body = max_body
        self.io_timeout_s = io_timeout_s
        super().__init__(address, _Handler)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def finish_request(
        self, request: socket.socket | tuple[bytes, socket.socket], client_address: Any
    ) -> None:
        # In the connection's own thread: a client that never completes the handshake holds only this thread.
        assert not isinstance(request, tuple)
        request.settimeout(self.io_timeout_s)
        # Small answers on kept-alive connections: without this, Nagle and the peer's delayed ACK add ~40 ms.
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            conn = self.tls.context().wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return  # a failed or abandoned handshake: nothing to answer
        try:
            _Handler(conn, client_address, self)
        except OSError:
            pass  # the peer went away or timed out mid-request
        finally:
            conn.close()

    def server_close(self) -> None:
        super().server_close()
        self.webhook.close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the API server reuses its connections
    server_version = "imagesmith-webhook"
    sys_version = ""
    server: WebhookServer

    def log_message(self, format: str, *args: Any) -> None:
        return  # no access log: decisions and errors are logged by the webhook, one line each

    def _send(self, status: int, payload: dict[str, Any], *, close: bool = False) -> None:
        data = json.dumps(payload, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        path = self.path.partition("?")[0]
        if path in ("/healthz", "/readyz"):
            self._send(200, {"status": "ok"})
        else:
            self._send(404, {"error": f"no such path {path}; POST {PATH}", "code": 404})

    def do_POST(self) -> None:
        path, _, query = self.path.partition("?")
        length_text = self.headers.get("Content-Length")
        if path != PATH:
            self._send(404, {"error": f"no such path {path}; POST {PATH}", "code": 404}, close=True)
            return
        if length_text is None:
            self._send(411, {"error": "Content-Length required", "code": 411}, close=True)
            return
        try:
            length = int(length_text)
            if length < 0:
                raise ValueError(length_text)
        except ValueError:
            self._send(400, {"error": f"bad Content-Length {length_text!r}", "code": 400}, close=True)
            return
        if length > self.server.max_body:
            self.server.webhook.log(f"refused a {length}-byte review from {self.client_address[0]} (413)")
            self._send(
                413,
                {"error": f"request body of {length} bytes exceeds {self.server.max_body}", "code": 413},
                close=True,
            )
            return
        body = self.rfile.read(length)
        if len(body) < length:
            self.close_connection = True
            return
        api_deadline = _timeout_param(query)
        status, payload = self.server.webhook.review(
            body, deadline_s=None if api_deadline is None else api_deadline - 0.5
        )
        self._send(status, payload, close=status >= 400)


def make_server(
    webhook: Webhook,
    *,
    tls_cert: str,
    tls_key: str,
    host: str = "0.0.0.0",
    port: int = 8443,
    max_body: int = MAX_BODY,
    io_timeout_s: float = IO_TIMEOUT_S,
    tls_reload_s: float = 5.0,
) -> WebhookServer:
    """A bound, not yet serving server (``serve_forever`` it in a thread; port 0 picks a free one)."""
    tls = _Tls(tls_cert, tls_key, reload_s=tls_reload_s)
    try:
        return WebhookServer((host, port), webhook, tls, max_body=max_body, io_timeout_s=io_timeout_s)
    except OSError as exc:
        raise EnvironmentProblem(f"cannot listen: {exc.strerror or exc}", where=f"{host}:{port}") from None


def node_source(
    *,
    nodes_file: str | None,
    kubeconfig: str | None = None,
    context: str | None = None,
    in_cluster: bool = False,
) -> tuple[Callable[[], list[dict[str, Any]]], Callable[[], object], Callable[[], None], str]:
    """(snapshot, version, stop, description): a file read once, or the API's nodes kept fresh by list + watch."""
    from imagesmith.fleet.cluster import ClusterSource, NodeCache

    if nodes_file is not None and (kubeconfig or context or in_cluster):
        raise UsageError(
            "give --nodes FILE or the API (--kubeconfig/--context/--in-cluster), not both", where="--nodes"
        )
    source = (
        ClusterSource.files(nodes_file)
        if nodes_file is not None
        else ClusterSource.api(kubeconfig, context, in_cluster=in_cluster)
    )
    cache = NodeCache(source).start()
    where = source.describe() if nodes_file is None else f"file {nodes_file}"
    return cache.snapshot, lambda: cache.version, cache.stop, where


def serve(
    *,
    tls_cert: str,
    tls_key: str,
    host: str,
    port: int,
    mode: str,
    failure_policy: str,
    deadline_s: float,
    nodes_file: str | None,
    kubeconfig: str | None,
    context: str | None,
    in_cluster: bool,
    images_file: str | None,
    max_body: int = MAX_BODY,
) -> None:
    """``imagesmith webhook serve``: serve until SIGTERM/SIGINT, then finish what is in flight."""
    import signal

    from imagesmith.fleet import images
    from imagesmith.matrix import knowledge

    resolve = images.from_file(images_file) if images_file else images.from_registry(timeout=deadline_s)
    judge = Judge(knowledge.load(), resolve)
    snapshot, version, stop, where = node_source(
        nodes_file=nodes_file, kubeconfig=kubeconfig, context=context, in_cluster=in_cluster
    )
    webhook = Webhook(
        snapshot,
        judge,
        nodes_version=version,
        mode=mode,
        failure_policy=failure_policy,
        deadline_s=deadline_s,
    )
    server = make_server(webhook, tls_cert=tls_cert, tls_key=tls_key, host=host, port=port, max_body=max_body)

    def _stop(_signum: int, _frame: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    webhook.log(
        f"serving https://{host}:{server.port}{PATH} (mode {mode}, failure policy {failure_policy}, "
        f"deadline {deadline_s:g}s, {len(snapshot())} nodes from {where})"
    )
    try:
        server.serve_forever(poll_interval=0.5)
    finally:
        server.server_close()
        stop()
        webhook.log("stopped")
