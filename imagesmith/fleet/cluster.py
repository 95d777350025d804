"""Nodes and pods as the Kubernetes API gives them: from files (`kubectl get ... -o json`) or the API itself.

Every item comes back in exactly the shape of one element of ``kubectl get nodes -o json``'s ``items``: the
camelCase API JSON with ``apiVersion`` and ``kind`` set and ``metadata.managedFields`` left out (kubectl hides
them by default), never the python client's snake_case model objects. Nothing here interprets a label: the
GFD reading lives in ``gfd.py``.

The official ``kubernetes`` client is imported lazily, through ``importlib`` (its models are a hundred thousand
lines a type checker has no need to read), and only when a source names the API. Every failure is one line:
a file problem is a ``UsageError``/``DataError`` naming the file (and the JSON line), an API problem an
``EnvironmentProblem`` naming the server, the kubeconfig and the HTTP status.

``NodeCache`` keeps the latest node list fresh with list + watch in a thread (resourceVersion-based, re-list
on 410 Gone), so a long-running process (the admission webhook) reads node facts watched, not fetched per
request.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import re
import socket
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imagesmith.contract.record import record
from imagesmith.errors import DataError, EnvironmentProblem, ImagesmithError, UsageError

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import ModuleType

# Items per page of a list call; the server may return fewer (and then a continue token).
PAGE_LIMIT = 500
# Seconds to wait for a connection, and for a list's answer.
CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 60.0
_INSTALL_HINT = "pip install 'imagesmith[fleet]', or give --nodes FILE --pods FILE (kubectl get ... -o json)"

Item = dict[str, Any]


@record
class ClusterSource:
    """Where node and pod facts come from: two files, or the Kubernetes API (a kubeconfig or in-cluster)."""

    nodes_file: str | None = None
    pods_file: str | None = None
    kubeconfig: str | None = None
    context: str | None = None
    in_cluster: bool = False

    @classmethod
    def files(cls, nodes: str | None, pods: str | None = None) -> ClusterSource:
        """``--nodes FILE --pods FILE``: the JSON of ``kubectl get nodes -o json`` / ``kubectl get pods -A -o json``."""
        return cls(nodes_file=nodes, pods_file=pods)

    @classmethod
    def api(
        cls, kubeconfig: str | None = None, context: str | None = None, *, in_cluster: bool = False
    ) -> ClusterSource:
        """The API: a kubeconfig (None: ``$KUBECONFIG`` or ``~/.kube/config``) and context, or in-cluster."""
        return cls(kubeconfig=kubeconfig, context=context, in_cluster=in_cluster)

    @property
    def uses_api(self) -> bool:
        return self.nodes_file is None and self.pods_file is None

    def describe(self) -> str:
        """Where the facts come from, for messages: ``kubeconfig ~/.kube/config (context prod)`` or the files."""
        if not self.uses_api:
            return f"files {self.nodes_file or '-'} and {self.pods_file or '-'}"
        if self.in_cluster:
            return "in-cluster service account"
        text = f"kubeconfig {self.kubeconfig_path()}"
        return f"{text} (context {self.context})" if self.context else text

    def kubeconfig_path(self) -> str:
        return self.kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"


# ---------------------------------------------------------------------------------------------------------
# The two readers


def read_nodes(source: ClusterSource, *, page_limit: int = PAGE_LIMIT) -> list[Item]:
    """All nodes, each as one item of ``kubectl get nodes -o json``."""
    if not source.uses_api:
        if source.nodes_file is None:
            raise UsageError(
                "no nodes file given", where="--nodes", hint="kubectl get nodes -o json > nodes.json"
            )
        return read_file(source.nodes_file, "Node")
    api = _Api.connect(source)
    try:
        return api.list_all("Node", None, page_limit)[0]
    finally:
        api.close()


def read_pods(
    source: ClusterSource, namespace: str | None = None, *, page_limit: int = PAGE_LIMIT
) -> list[Item]:
    """All pods (of one namespace when given), each as one item of ``kubectl get pods -A -o json``."""
    if not source.uses_api:
        if source.pods_file is None:
            raise UsageError(
                "no pods file given", where="--pods", hint="kubectl get pods -A -o json > pods.json"
            )
        items = read_file(source.pods_file, "Pod")
        if namespace is None:
            return items
        return [p for p in items if p["metadata"].get("namespace") == namespace]
    api = _Api.connect(source)
    try:
        return api.list_all("Pod", namespace, page_limit)[0]
    finally:
        api.close()


def read_file(path: str, kind: str) -> list[Item]:
    """The items of a ``kind`` (``Node``, ``Pod``) file: a ``List``/``<kind>List`` or a single object."""
    plural = kind.lower() + "s"
    hint = f"expected the output of kubectl get {plural} -o json"
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError("no such file", where=path, hint=hint) from None
    except IsADirectoryError:
        raise UsageError("is a directory, not a file", where=path, hint=hint) from None
    except UnicodeDecodeError:
        raise DataError("not UTF-8 text", where=path, hint=hint) from None
    except OSError as e:
        raise UsageError(f"cannot read: {e.strerror or e}", where=path) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        if text.lstrip().startswith(("apiVersion:", "items:", "kind:", "---")):
            hint = f"this looks like YAML; use kubectl get {plural} -o json"
        raise DataError(
            f"not valid JSON: {e.msg} (column {e.colno})", where=f"{path}:{e.lineno}", hint=hint
        ) from None
    if not isinstance(data, dict):
        raise DataError(
            f"expected a {kind}List or a {kind} object, found a JSON {_json_type(data)}",
            where=path,
            hint=hint,
        )
    found = data.get("kind")
    if found in ("List", f"{kind}List"):
        items = data.get("items")
        if items is None:  # kubectl prints "items": [] for an empty list, but be lenient
            items = []
        if not isinstance(items, list):
            raise DataError(f"'items' is a JSON {_json_type(items)}, not an array", where=path, hint=hint)
    elif found == kind:
        items = [data]
    else:
        what = f"kind {found!r}" if isinstance(found, str) else "no 'kind'"
        raise DataError(f"expected a {kind}List, List or {kind}, found {what}", where=path, hint=hint)
    out = []
    for i, item in enumerate(items):
        problem = _item_problem(item, kind)
        if problem:
            raise DataError(f"items[{i}] {problem}", where=path, hint=hint)
        out.append(_normalize(item, kind))
    return out


def _json_type(value: object) -> str:
    names = {list: "array", dict: "object", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")


def _item_problem(item: object, kind: str) -> str | None:
    if not isinstance(item, dict):
        return f"is a JSON {_json_type(item)}, not a {kind} object"
    if item.get("kind", kind) != kind:
        return f"is a {item.get('kind')}, not a {kind}"
    metadata = item.get("metadata")
    if not isinstance(metadata, dict) or not isinstance(metadata.get("name"), str):
        return "has no metadata.name"
    return None


def _normalize(item: Item, kind: str) -> Item:
    """One item as kubectl prints it: ``apiVersion``/``kind`` first, no ``managedFields``."""
    metadata = item.get("metadata")
    if isinstance(metadata, dict) and "managedFields" in metadata:
        metadata = {k: v for k, v in metadata.items() if k != "managedFields"}
    rest = {k: v for k, v in item.items() if k not in ("apiVersion", "kind", "metadata")}
    return {"apiVersion": item.get("apiVersion", "v1"), "kind": kind, "metadata": metadata, **rest}


# ---------------------------------------------------------------------------------------------------------
# The API, through the official client


def _kubernetes(name: str) -> ModuleType:
    try:
        return importlib.import_module(f"kubernetes.{name}")
    except ImportError:
        raise EnvironmentProblem(
            "reading the cluster from the Kubernetes API needs the kubernetes package", hint=_INSTALL_HINT
        ) from None


def _one_line(text: object, limit: int = 300) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _network_reason(exc: BaseException) -> str:
    """``connection refused`` rather than urllib3's nest of reprs."""
    text = str(getattr(exc, "reason", None) or exc)
    m = re.search(r"\[Errno -?\d+\] ([^')\]]+)", text)
    if m:
        return m.group(1).strip().lower()
    if "timed out" in text.lower():
        return "timed out"
    if "certificate" in text.lower() or "SSL" in text:
        return "TLS failed: " + _one_line(text.rsplit("SSLError(", 1)[-1], 160)
    return _one_line(text, 160)


class _Gone(Exception):
    """The watch's resourceVersion is too old (410): list again."""


class _Api:
    """One connection to the API server: a configured ``CoreV1Api`` and what to name in messages."""

    def __init__(self, source: ClusterSource, core: Any, api_client: Any, host: str) -> None:
        self.source = source
        self.core = core
        self.api_client = api_client
        self.host = host
        self.exceptions = _kubernetes("client.exceptions")

    @classmethod
    def connect(cls, source: ClusterSource) -> _Api:
        client = _kubernetes("client")
        config = _kubernetes("config")
        cfg = client.Configuration()
        try:
            if source.in_cluster:
                config.load_incluster_config(client_configuration=cfg)
            else:
                config.load_kube_config(
                    config_file=source.kubeconfig_path(),  # the client expands ~ and splits on ":"
                    context=source.context,
                    client_configuration=cfg,
                    persist_config=False,
                )
        except Exception as e:  # ConfigException, a YAML error, a missing file: all say the same to the user
            hint = (
                "run inside a pod with a service account, or give a kubeconfig or --nodes FILE --pods FILE"
                if source.in_cluster
                else "check the kubeconfig (kubectl config view), or give --nodes FILE --pods FILE"
            )
            raise EnvironmentProblem(f"cannot load {source.describe()}: {_one_line(e)}", hint=hint) from None
        cfg.retries = 1
        api_client = client.ApiClient(cfg)
        return cls(source, client.CoreV1Api(api_client), api_client, str(cfg.host))

    def close(self) -> None:
        self.api_client.close()

    def _lister(self, kind: str, namespace: str | None) -> tuple[Callable[..., Any], tuple[str, ...]]:
        if kind == "Node":
            return self.core.list_node, ()
        if namespace is None:
            return self.core.list_pod_for_all_namespaces, ()
        return self.core.list_namespaced_pod, (namespace,)

    def problem(self, what: str, exc: BaseException) -> EnvironmentProblem:
        """The one line for a failed call: server, kubeconfig, HTTP status and the server's own message."""
        where = f"the Kubernetes API at {self.host} ({self.source.describe()})"
        if isinstance(exc, self.exceptions.ApiException):
            status = int(exc.status or 0)
            if status == 0:  # the client's wrapper for a TLS failure
                return EnvironmentProblem(
                    f"cannot {what} from {where}: {_network_reason(exc)}",
                    hint="check certificate-authority in the kubeconfig",
                )
            message = _status_message(exc.body)
            reason = _one_line(exc.reason or "")
            text = f"cannot {what} from {where}: HTTP {status} {reason}".rstrip()
            if message and message.lower() != reason.lower():
                text += f": {message}"
            hints = {
                401: "the kubeconfig's token or client certificate was not accepted; log in again",
                403: f"the identity may not {what}: grant get, list and watch on them (RBAC)",
            }
            return EnvironmentProblem(text, hint=hints.get(status))
        reason = _network_reason(exc)
        hint = (
            "check certificate-authority in the kubeconfig"
            if reason.startswith("TLS failed")
            else "check the kubeconfig's server and the network, or give --nodes FILE --pods FILE"
        )
        return EnvironmentProblem(f"cannot reach {where} to {what}: {reason}", hint=hint)

    def call(self, what: str, fn: Callable[..., Any], *args: object, **kwargs: object) -> Item:
        """One list call with the raw response decoded: the API JSON, never the client's models."""
        urllib3_exceptions = importlib.import_module("urllib3.exceptions")
        try:
            resp = fn(
                *args, _preload_content=False, _request_timeout=(CONNECT_TIMEOUT_S, READ_TIMEOUT_S), **kwargs
            )
            try:
                raw = resp.data
            finally:
                resp.release_conn()
        except self.exceptions.ApiException as e:
            if e.status == 410:
                raise _Gone from None
            raise self.problem(what, e) from None
        except urllib3_exceptions.HTTPError as e:
            raise self.problem(what, e) from None
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            body = None
        if not isinstance(body, dict):
            raise EnvironmentProblem(
                f"the Kubernetes API at {self.host} answered {what} with something not a JSON object"
            )
        return body

    def list_all(self, kind: str, namespace: str | None, page_limit: int) -> tuple[list[Item], str | None]:
        """Every item, following ``metadata.continue``; and the list's resourceVersion (for a watch)."""
        fn, args = self._lister(kind, namespace)
        what = f"list {kind.lower()}s" + (f" in namespace {namespace}" if namespace else "")
        for _attempt in range(3):  # an expired continue token (410) restarts the list from the top
            items: list[Item] = []
            token: str | None = None
            try:
                while True:
                    extra: dict[str, object] = {"limit": page_limit}
                    if token:
                        extra["_continue"] = token
                    body = self.call(what, fn, *args, **extra)
                    page = body.get("items") or []
                    if not isinstance(page, list):
                        raise EnvironmentProblem(
                            f"the Kubernetes API at {self.host} answered {what} without a list of items"
                        )
                    items.extend(page)
                    metadata = body.get("metadata") or {}
                    token = metadata.get("continue") or None
                    if not token:
                        version = metadata.get("resourceVersion")
                        return [_normalize(i, kind) for i in items], str(version) if version else None
            except _Gone:
                continue
        raise EnvironmentProblem(
            f"the Kubernetes API at {self.host} kept expiring the continue token to {what}"
        )


def _status_message(body: object) -> str:
    """The ``message`` of a ``Status`` error body, if the body is one."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if not isinstance(body, str) or not body.strip():
        return ""
    try:
        data = json.loads(body)
    except ValueError:
        return _one_line(body, 200)
    return _one_line(data.get("message", ""), 200) if isinstance(data, dict) else ""


# ---------------------------------------------------------------------------------------------------------
# A watched node list


class NodeCache:
    """The latest node list, kept fresh from the API by list + watch in a daemon thread.

    ``start()`` lists synchronously (so a bad kubeconfig fails at start, as one line) and then watches from the
    list's resourceVersion: ADDED/MODIFIED replace a node, DELETED drops it, BOOKMARK moves the version on;
    a 410 Gone (the version is too old) lists again. A watch that ends (``watch_timeout_s``, the server's
    own limit) is re-opened from the last version; any other failure is kept in ``last_error`` and retried
    after ``retry_s``, serving the last good list meanwhile. From files the list is read once.

    ``snapshot()`` is cheap (a list of the current node dicts, by name); treat the dicts as read-only.
    ``version`` grows with every change, so a reader may cache what it derives from a snapshot.
    """

    def __init__(
        self,
        source: ClusterSource,
        *,
        page_limit: int = PAGE_LIMIT,
        watch_timeout_s: int = 240,
        retry_s: float = 5.0,
    ) -> None:
        self.source = source
        self.page_limit = page_limit
        self.watch_timeout_s = watch_timeout_s
        self.retry_s = retry_s
        self.lists = 0  # how many full lists were taken (1 after start; more after each 410)
        self.last_error: str | None = None
        self._nodes: dict[str, Item] = {}
        self._version = 0
        self._resource_version: str | None = None
        self._cond = threading.Condition()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._api: _Api | None = None
        self._watch: Any = None
        self._resp: Any = None

    # --- reading

    def snapshot(self) -> list[Item]:
        with self._cond:
            return [self._nodes[n] for n in sorted(self._nodes)]

    @property
    def version(self) -> int:
        return self._version

    def wait_for(self, predicate: Callable[[list[Item]], bool], timeout: float) -> bool:
        """Block until ``predicate(snapshot)`` holds (True) or ``timeout`` seconds pass (False)."""
        with self._cond:
            return self._cond.wait_for(
                lambda: predicate([self._nodes[n] for n in sorted(self._nodes)]), timeout
            )

    # --- running

    def start(self) -> NodeCache:
        if not self.source.uses_api:
            self._replace(read_nodes(self.source), None)
            return self
        self._api = _Api.connect(self.source)
        self._list()
        self._thread = threading.Thread(target=self._run, name="imagesmith-node-watch", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        thread = self._thread
        deadline = time.monotonic() + timeout
        while thread is not None and thread.is_alive() and time.monotonic() < deadline:
            watch, resp = self._watch, self._resp  # again and again, in case a stream was just opening
            if watch is not None:
                watch.stop()
            if resp is not None:  # unblock the read (newer clients do this in Watch.stop, older ones don't)
                sock = getattr(getattr(resp, "connection", None), "sock", None)
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)
            thread.join(0.05)
        if self._api is not None:
            self._api.close()

    def __enter__(self) -> NodeCache:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # --- the loop

    def _replace(self, items: list[Item], resource_version: str | None) -> None:
        with self._cond:
            self._nodes = {n["metadata"]["name"]: n for n in items}
            self._resource_version = resource_version
            self._version += 1
            self.lists += 1
            self._cond.notify_all()

    def _list(self) -> None:
        assert self._api is not None
        items, resource_version = self._api.list_all("Node", None, self.page_limit)
        self._replace(items, resource_version)

    def _run(self) -> None:
        need_list = False
        while not self._stopping.is_set():
            try:
                if need_list:
                    self._list()
                    need_list = False
                self._watch_once()
                self.last_error = None
            except _Gone:
                need_list = True
            except ImagesmithError as e:
                if self._stopping.is_set():
                    break
                self.last_error = e.one_line()
                need_list = need_list or self._resource_version is None
                self._stopping.wait(self.retry_s)
            except Exception as e:  # a dropped stream, a reset connection: keep serving, try again
                if self._stopping.is_set():
                    break
                self.last_error = f"watching nodes at {self._api.host if self._api else '?'}: {_one_line(e)}"
                self._stopping.wait(self.retry_s)

    def _watch_once(self) -> None:
        api = self._api
        assert api is not None
        watch = _kubernetes("watch").Watch(return_type="object")  # "object": raw dicts, no model objects
        self._watch = watch
        if self._stopping.is_set():
            return
        kwargs: dict[str, object] = {
            "timeout_seconds": self.watch_timeout_s,  # also turns off the client's own silent 410 retry
            "allow_watch_bookmarks": True,
            "_request_timeout": (CONNECT_TIMEOUT_S, self.watch_timeout_s + 30),
        }
        if self._resource_version:
            kwargs["resource_version"] = self._resource_version
        urllib3_exceptions = importlib.import_module("urllib3.exceptions")

        def list_node(*args: object, **kw: object) -> Any:
            self._resp = api.core.list_node(*args, **kw)  # the open stream, for stop() to cut
            return self._resp

        try:
            for event in watch.stream(list_node, **kwargs):
                if self._stopping.is_set():
                    break
                self._apply(event.get("type"), event.get("raw_object"))
        except api.exceptions.ApiException as e:
            if e.status == 410:
                raise _Gone from None
            raise api.problem("watch nodes", e) from None
        except urllib3_exceptions.HTTPError as e:
            if self._stopping.is_set():
                return
            raise api.problem("watch nodes", e) from None
        finally:
            self._watch = self._resp = None

    def _apply(self, kind: object, obj: object) -> None:
        if not isinstance(obj, dict) or not isinstance(obj.get("metadata"), dict):
            return
        metadata = obj["metadata"]
        with self._cond:
            if metadata.get("resourceVersion"):
                self._resource_version = str(metadata["resourceVersion"])
            if kind == "BOOKMARK":
                return
            name = metadata.get("name")
            if not isinstance(name, str):
                return
            if kind in ("ADDED", "MODIFIED"):
                self._nodes[name] = _normalize(obj, "Node")
            elif kind == "DELETED":
                self._nodes.pop(name, None)
            else:
                return
            self._version += 1
            self._cond.notify_all()
