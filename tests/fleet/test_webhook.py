"""The admission webhook for real: a TLS server on localhost (certificates made by openssl), a real HTTPS client
that trusts only the test CA, AdmissionReview bodies of the API server's shape, the fleet core's decision.

Nodes (tests/fleet/webhook_fixtures/nodes.json): two T4 nodes (pool t4, driver 535.183.01, compute 7.5), one
H100 node (pool h100, driver 570.124.06, compute 9.0), one CPU node. Images (images.json): a CUDA 12.8 image
with sm_80,sm_90,compute_90 and a 570.26 floor (runs on the H100 only), a CUDA 12.2 image that runs on both.
"""

from __future__ import annotations

import base64
import copy
import http.client
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from imagesmith.fleet import images, webhook_manifests
from imagesmith.fleet.scan import Judge
from imagesmith.fleet.webhook import Webhook, WebhookServer, make_server
from imagesmith.fleet.webhook_cli import serve_command
from imagesmith.matrix import knowledge

HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "webhook_fixtures"
SCHEMAS = HERE / "k8s_schemas"
NODES = FIXTURES / "nodes.json"
IMAGES = FIXTURES / "images.json"
NEW = "registry.example/ml/train:cu128"  # CUDA 12.8, sm_80/sm_90/compute_90, min driver 570.26
OLD = "registry.example/ml/infer:cu122"  # CUDA 12.2, runs on both pools
GPU = {"limits": {"nvidia.com/gpu": "1"}}


# ---- certificates -------------------------------------------------------------------------------------


def _openssl(*args: str, cwd: Path) -> None:
    done = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"openssl {' '.join(args)}: {done.stderr}"


def make_pki(d: Path, ca_name: str = "imagesmith test CA") -> dict[str, Path]:
    """A CA, and a server certificate it signed for localhost and 127.0.0.1, in directory ``d``."""
    d.mkdir(parents=True, exist_ok=True)
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-subj", f"/CN={ca_name}", "-keyout", "ca.key", "-out", "ca.crt",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=d,
    )  # fmt: skip
    _openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        "tls.key",
        "-out",
        "tls.csr",
        cwd=d,
    )
    (d / "ext.cnf").write_text(
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n",
        encoding="utf-8",
    )
    _openssl(
        "x509", "-req", "-in", "tls.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
        "-days", "2", "-extfile", "ext.cnf", "-out", "tls.crt",
        cwd=d,
    )  # fmt: skip
    return {"ca": d / "ca.crt", "cert": d / "tls.crt", "key": d / "tls.key"}


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_pki(tmp_path_factory.mktemp("pki"))


# ---- the server, in a thread ------------------------------------------------------------------------------


def _items() -> list[dict[str, Any]]:
    data = json.loads(NODES.read_text(encoding="utf-8"))
    items = data["items"]
    assert isinstance(items, list)
    return items


class Running:
    def __init__(self, server: WebhookServer, ca: Path, log: list[str]) -> None:
        self.server = server
        self.port = server.port
        self.log = log
        self.client_tls = ssl.create_default_context(cafile=str(ca))

    def connect(self, timeout: float = 10.0) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection("localhost", self.port, context=self.client_tls, timeout=timeout)

    def post(self, body: bytes, path: str = "/validate") -> tuple[int, dict[str, Any]]:
        conn = self.connect()
        try:
            conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
            answer = conn.getresponse()
            assert answer.getheader("Content-Type") == "application/json"
            return answer.status, json.loads(answer.read())
        finally:
            conn.close()

    def review(self, review: dict[str, Any], path: str = "/validate") -> dict[str, Any]:
        """POST one review; the answer must be a 200 AdmissionReview echoing the uid."""
        status, answer = self.post(json.dumps(review).encode(), path)
        assert status == 200, answer
        assert answer["apiVersion"] == "admission.k8s.io/v1"
        assert answer["kind"] == "AdmissionReview"
        assert answer["response"]["uid"] == review["request"]["uid"]
        response = answer["response"]
        assert isinstance(response, dict)
        return response


Start = Callable[..., Running]


@pytest.fixture
def start(pki: dict[str, Path]) -> Iterator[Start]:
    servers: list[WebhookServer] = []

    def run(
        *,
        mode: str = "deny",
        failure_policy: str = "Fail",
        nodes: Callable[[], list[dict[str, Any]]] | None = None,
        resolve: Any = None,
        deadline_s: float = 4.0,
        max_body: int = 3 * 1024 * 1024,
        io_timeout_s: float = 5.0,
    ) -> Running:
        log: list[str] = []
        fixed = _items()
        judge = Judge(knowledge.load(), resolve or images.from_file(str(IMAGES)))
        hook = Webhook(
            nodes or (lambda: fixed),
            judge,
            mode=mode,
            failure_policy=failure_policy,
            deadline_s=deadline_s,
            log=log.append,
        )
        server = make_server(
            hook,
            tls_cert=str(pki["cert"]),
            tls_key=str(pki["key"]),
            host="127.0.0.1",
            port=0,
            max_body=max_body,
            io_timeout_s=io_timeout_s,
        )
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(server)
        return Running(server, pki["ca"], log)

    yield run
    for server in servers:
        server.shutdown()
        server.server_close()


# ---- reviews of the API server's shape ---------------------------------------------------------------------

_uids = iter(range(1, 1_000_000))

RESOURCES = {
    "Pod": ("", "v1", "pods"),
    "Deployment": ("apps", "v1", "deployments"),
    "StatefulSet": ("apps", "v1", "statefulsets"),
    "DaemonSet": ("apps", "v1", "daemonsets"),
    "Job": ("batch", "v1", "jobs"),
    "CronJob": ("batch", "v1", "cronjobs"),
}


def pod_spec(image: str, selector: dict[str, str] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "main", "image": image, "resources": GPU}]}
    if selector is not None:
        spec["nodeSelector"] = selector
    return spec


def obj(kind: str, spec: dict[str, Any], name: str = "trainer") -> dict[str, Any]:
    group, version, _ = RESOURCES[kind]
    api = f"{group}/{version}" if group else version
    meta = {"name": name, "namespace": "ml"}
    template = {"metadata": {"labels": {"app": name}}, "spec": spec}
    body: dict[str, Any]
    if kind == "Pod":
        body = spec
    elif kind == "CronJob":
        body = {"schedule": "0 * * * *", "jobTemplate": {"spec": {"template": template}}}
    elif kind == "Job":
        body = {"template": template}
    else:
        body = {"selector": {"matchLabels": {"app": name}}, "template": template}
    return {"apiVersion": api, "kind": kind, "metadata": meta, "spec": body}


def review(
    obj_: dict[str, Any] | None, operation: str = "CREATE", old: dict[str, Any] | None = None, **extra: Any
) -> dict[str, Any]:
    source = obj_ or old or {}
    kind = str(source.get("kind", "Pod"))
    group, version, resource = RESOURCES.get(kind, ("", "v1", kind.lower() + "s"))
    gvk = {"group": group, "version": version, "kind": kind}
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": f"705ab4f5-6393-11e8-b7cc-{next(_uids):012d}",
            "kind": gvk,
            "resource": {"group": group, "version": version, "resource": resource},
            "requestKind": gvk,
            "requestResource": {"group": group, "version": version, "resource": resource},
            "name": (source.get("metadata") or {}).get("name", ""),
            "namespace": "ml",
            "operation": operation,
            "userInfo": {"username": "alice", "groups": ["system:authenticated"]},
            "object": obj_,
            "oldObject": old,
            "dryRun": False,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": f"{operation.capitalize()}Options"},
            **extra,
        },
    }


def assert_refusal_names_everything(text: str) -> None:
    assert NEW in text
    assert "t4-a" in text and "t4-b" in text
    assert "h100-a" not in text  # not a node the pod may land on
    assert "DRIVER_TOO_OLD" in text and "NO_KERNEL_IMAGE" in text


# ---- the decision, through the envelope ---------------------------------------------------------------------


def test_pod_that_can_only_land_on_the_535_pool_is_denied_naming_image_nodes_and_codes(start: Start) -> None:
    running = start()
    r = review(obj("Pod", pod_spec(NEW, {"pool": "t4"})))
    answer = running.review(r)
    assert answer["allowed"] is False
    assert answer["status"]["code"] == 403
    assert_refusal_names_everything(answer["status"]["message"])
    assert "warnings" not in answer
    denied = [line for line in running.log if "denied" in line]
    assert len(denied) == 1 and r["request"]["uid"] in denied[0] and "Pod ml/trainer" in denied[0]


def test_warn_mode_admits_with_the_refusal_as_a_warning(start: Start) -> None:
    running = start(mode="warn")
    answer = running.review(review(obj("Pod", pod_spec(NEW, {"pool": "t4"}))))
    assert answer["allowed"] is True
    (warning,) = answer["warnings"]
    assert NEW in warning and "t4-a, t4-b" in warning
    assert "DRIVER_TOO_OLD" in warning and "NO_KERNEL_IMAGE" in warning
    assert len(warning) <= 256 and "\n" not in warning  # the API server's limit for one warning
    assert_refusal_names_everything(answer["status"]["message"])


@pytest.mark.parametrize("kind", ["Deployment", "CronJob", "Job", "StatefulSet", "DaemonSet"])
def test_pod_templates_of_controllers_are_judged_the_same_way(start: Start, kind: str) -> None:
    running = start()
    denied = running.review(review(obj(kind, pod_spec(NEW, {"pool": "t4"}))))
    assert denied["allowed"] is False and denied["status"]["code"] == 403
    assert_refusal_names_everything(denied["status"]["message"])
    allowed = running.review(review(obj(kind, pod_spec(NEW, {"pool": "h100"}))))
    assert allowed["allowed"] is True


@pytest.mark.parametrize(
    ("image", "selector"),
    [
        (NEW, {"pool": "h100"}),
        (NEW, None),  # may land on the T4s or the H100: it runs somewhere it may land
        (OLD, {"pool": "t4"}),
    ],
)
def test_a_pod_that_may_land_where_its_image_runs_is_allowed(start: Start, image: str, selector: Any) -> None:
    answer = start().review(review(obj("Pod", pod_spec(image, selector))))
    assert answer["allowed"] is True
    assert "warnings" not in answer
    assert answer["status"]["code"] == 200


def test_every_image_of_the_pod_is_judged_init_containers_too(start: Start) -> None:
    spec = pod_spec(OLD, {"pool": "t4"})
    spec["initContainers"] = [{"name": "fetch", "image": NEW}]
    answer = start().review(review(obj("Pod", spec)))
    assert answer["allowed"] is False
    assert NEW in answer["status"]["message"] and OLD not in answer["status"]["message"]


def test_an_image_whose_labels_cannot_be_read_is_admitted_with_a_warning(start: Start) -> None:
    answer = start().review(review(obj("Pod", pod_spec("registry.example/unknown:1", {"pool": "t4"}))))
    assert answer["allowed"] is True
    assert any("registry.example/unknown:1" in w and "not judged" in w for w in answer["warnings"])


def test_node_facts_follow_the_watched_list(start: Start) -> None:
    """A node that changes (a new resourceVersion) is judged as it is now, not as first seen."""
    current = _items()
    running = start(nodes=lambda: current)
    r = obj("Pod", pod_spec(NEW, {"kubernetes.io/hostname": "h100-a"}))
    assert running.review(review(r))["allowed"] is True
    downgraded = copy.deepcopy(current)
    h100 = next(n for n in downgraded if n["metadata"]["name"] == "h100-a")
    h100["metadata"]["resourceVersion"] = "101"
    labels = h100["metadata"]["labels"]
    labels.update(
        {"nvidia.com/cuda.driver-version.full": "535.183.01", "nvidia.com/cuda.driver-version.major": "535"}
    )
    labels.update(
        {"nvidia.com/cuda.driver-version.minor": "183", "nvidia.com/cuda.driver-version.revision": "01"}
    )
    current = downgraded
    answer = running.review(review(r))
    assert answer["allowed"] is False
    assert "h100-a" in answer["status"]["message"] and "DRIVER_TOO_OLD" in answer["status"]["message"]


# ---- what is not judged ---------------------------------------------------------------------------------------


def test_delete_is_allowed_untouched(start: Start) -> None:
    running = start()
    answer = running.review(review(None, "DELETE", old=obj("Pod", pod_spec(NEW, {"pool": "t4"}))))
    assert answer["allowed"] is True
    assert "DELETE" in answer["status"]["message"]
    assert not running.log


def test_kinds_without_a_pod_spec_and_subresources_are_allowed(start: Start) -> None:
    running = start()
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "x", "namespace": "ml"},
        "data": {},
    }
    assert running.review(review(config_map))["allowed"] is True
    scale = {
        "apiVersion": "autoscaling/v1",
        "kind": "Scale",
        "metadata": {"name": "trainer"},
        "spec": {"replicas": 3},
    }
    r = review(scale, "UPDATE", old=scale, subResource="scale")
    assert running.review(r)["allowed"] is True


def test_update_judges_only_a_changed_pod_spec(start: Start) -> None:
    running = start()
    bad = obj("Deployment", pod_spec(NEW, {"pool": "t4"}))
    relabelled = copy.deepcopy(bad)
    relabelled["metadata"]["labels"] = {"team": "ml"}  # e.g. a label or finalizer edit on a running object
    assert running.review(review(relabelled, "UPDATE", old=bad))["allowed"] is True
    good = obj("Deployment", pod_spec(OLD, {"pool": "t4"}))
    answer = running.review(review(bad, "UPDATE", old=good))  # the image changed to one that cannot run
    assert answer["allowed"] is False and NEW in answer["status"]["message"]


# ---- malformed reviews, bounds --------------------------------------------------------------------------------

GOOD = review(obj("Pod", pod_spec(NEW, {"pool": "t4"})))


def _without(path: tuple[str, ...]) -> bytes:
    r = copy.deepcopy(GOOD)
    target = r
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return json.dumps(r).encode()


def _with(path: tuple[str, ...], value: Any) -> bytes:
    r = copy.deepcopy(GOOD)
    target = r
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return json.dumps(r).encode()


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"this is not JSON", id="not-json"),
        pytest.param(b"\xff\xfe\x00garbage", id="not-utf8"),
        pytest.param(b"[1, 2]", id="a-list"),
        pytest.param(_with(("apiVersion",), "admission.k8s.io/v1beta1"), id="v1beta1"),
        pytest.param(_with(("kind",), "TokenReview"), id="wrong-kind"),
        pytest.param(_without(("request",)), id="no-request"),
        pytest.param(_with(("request",), "x"), id="request-not-object"),
        pytest.param(_without(("request", "uid")), id="no-uid"),
        pytest.param(_with(("request", "uid"), ""), id="empty-uid"),
        pytest.param(_with(("request", "object"), None), id="create-without-object"),
        pytest.param(_with(("request", "object"), ["not", "an", "object"]), id="object-not-object"),
        pytest.param(_with(("request", "object", "spec"), ["not", "a", "spec"]), id="pod-spec-not-object"),
        pytest.param(
            json.dumps(review({**obj("Deployment", pod_spec(NEW)), "spec": "x"})).encode(),
            id="deployment-spec-string",
        ),
    ],
)
def test_malformed_reviews_get_400_with_a_json_error_and_are_never_admitted(
    start: Start, body: bytes
) -> None:
    running = start()
    status, answer = running.post(body)
    assert status == 400
    assert answer["code"] == 400 and answer["error"]
    assert "response" not in answer and "allowed" not in json.dumps(answer)
    assert running.log and "malformed" in running.log[-1]


def test_an_oversized_body_gets_413_without_being_read(start: Start) -> None:
    running = start(max_body=64 * 1024)
    conn = running.connect(timeout=3.0)
    conn.putrequest("POST", "/validate")
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Content-Length", str(4 * 1024 * 1024))
    conn.endheaders()  # no body is ever sent: an answer proves the server did not wait to read it
    began = time.monotonic()
    answer = conn.getresponse()
    assert answer.status == 413
    assert answer.getheader("Connection") == "close"
    assert "exceeds" in json.loads(answer.read())["error"]
    assert time.monotonic() - began < 2.0
    conn.close()
    # A body just under the bound is read and judged.
    status, _ = running.post(json.dumps(GOOD).encode())
    assert status == 200


def test_a_post_without_content_length_is_refused_and_unknown_paths_are_404(start: Start) -> None:
    running = start()
    conn = running.connect(timeout=3.0)
    conn.putrequest("POST", "/validate")
    conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders()
    assert conn.getresponse().status == 411
    conn.close()
    status, answer = running.post(json.dumps(GOOD).encode(), path="/mutate")
    assert status == 404 and "/validate" in answer["error"]


def test_probes_and_keep_alive(start: Start) -> None:
    running = start()
    conn = running.connect()
    for path in ("/healthz", "/readyz"):
        conn.request("GET", path)
        answer = conn.getresponse()
        assert answer.status == 200 and json.loads(answer.read()) == {"status": "ok"}
    # The API server posts to the path with ?timeout=...: the same connection carries reviews too.
    conn.request("POST", "/validate?timeout=5s", body=json.dumps(review(obj("Pod", pod_spec(OLD)))).encode())
    answer = conn.getresponse()
    assert answer.status == 200 and json.loads(answer.read())["response"]["allowed"] is True
    sock = conn.sock
    assert isinstance(sock, ssl.SSLSocket) and sock.version() in ("TLSv1.2", "TLSv1.3")
    conn.close()


def test_only_clients_that_trust_the_ca_talk_to_it(start: Start) -> None:
    running = start()
    stranger = http.client.HTTPSConnection(
        "localhost", running.port, context=ssl.create_default_context(), timeout=5
    )
    with pytest.raises(ssl.SSLCertVerificationError):
        stranger.request("GET", "/healthz")
    stranger.close()
    plain = http.client.HTTPConnection("127.0.0.1", running.port, timeout=5)
    with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
        plain.request("GET", "/healthz")
        plain.getresponse().read()
    plain.close()


def test_a_silent_client_does_not_hold_up_the_others(start: Start) -> None:
    running = start(io_timeout_s=2.0)
    silent = socket.create_connection(("127.0.0.1", running.port))  # never starts the TLS handshake
    try:
        began = time.monotonic()
        answer = running.review(review(obj("Pod", pod_spec(OLD))))
        assert answer["allowed"] is True
        assert time.monotonic() - began < 1.0
        silent.settimeout(5.0)
        assert silent.recv(1) == b""  # closed by the server at its socket timeout
    finally:
        silent.close()


def test_a_rotated_certificate_is_served_without_a_restart(pki: dict[str, Path], tmp_path: Path) -> None:
    """cert-manager (or a person) replaces the Secret's files: new connections get the new pair."""
    served = {"cert": tmp_path / "tls.crt", "key": tmp_path / "tls.key"}
    for name, path in served.items():
        path.write_bytes(pki[name].read_bytes())
    hook = Webhook(
        lambda: _items(), Judge(knowledge.load(), images.from_file(str(IMAGES))), log=lambda _: None
    )
    server = make_server(
        hook,
        tls_cert=str(served["cert"]),
        tls_key=str(served["key"]),
        host="127.0.0.1",
        port=0,
        tls_reload_s=0.1,
    )
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        old_ca = ssl.create_default_context(cafile=str(pki["ca"]))
        rotated = make_pki(tmp_path / "rotated", "rotated CA")
        new_ca = ssl.create_default_context(cafile=str(rotated["ca"]))

        def healthz(context: ssl.SSLContext) -> int:
            conn = http.client.HTTPSConnection("localhost", server.port, context=context, timeout=5)
            try:
                conn.request("GET", "/healthz")
                return conn.getresponse().status
            finally:
                conn.close()

        assert healthz(old_ca) == 200
        later = time.time() + 10
        for name, path in served.items():
            path.write_bytes(rotated[name].read_bytes())
            os.utime(path, (later, later))
        time.sleep(0.3)
        assert healthz(new_ca) == 200
        with pytest.raises(ssl.SSLCertVerificationError):
            healthz(old_ca)
    finally:
        server.shutdown()
        server.server_close()


# ---- internal errors and the deadline follow the failure policy ---------------------------------------------


def _broken_nodes() -> list[dict[str, Any]]:
    raise RuntimeError("node watch not synced")


def test_an_internal_error_with_failure_policy_fail_refuses_and_is_logged(start: Start) -> None:
    running = start(nodes=_broken_nodes, failure_policy="Fail")
    r = review(obj("Pod", pod_spec(OLD, {"pool": "t4"})))
    answer = running.review(r)
    assert answer["allowed"] is False
    assert answer["status"]["code"] == 500
    assert "node watch not synced" in answer["status"]["message"]
    (line,) = running.log
    assert r["request"]["uid"] in line and "RuntimeError" in line and "Fail" in line


def test_an_internal_error_with_failure_policy_ignore_admits_with_a_warning(start: Start) -> None:
    running = start(nodes=_broken_nodes, failure_policy="Ignore")
    r = review(obj("Pod", pod_spec(NEW, {"pool": "t4"})))
    answer = running.review(r)
    assert answer["allowed"] is True
    assert any("could not judge" in w for w in answer["warnings"])
    (line,) = running.log
    assert r["request"]["uid"] in line and "Ignore" in line


def test_judging_runs_under_a_deadline_below_the_api_servers_timeout(start: Start) -> None:
    table = images.from_file(str(IMAGES))

    def slow_registry(ref: str) -> Any:
        time.sleep(3.0)
        return table(ref)

    running = start(resolve=slow_registry, deadline_s=0.5, failure_policy="Fail")
    began = time.monotonic()
    answer = running.review(review(obj("Pod", pod_spec(NEW, {"pool": "t4"}))))
    assert time.monotonic() - began < 2.0
    assert answer["allowed"] is False and answer["status"]["code"] == 500
    assert "longer than 0.5s" in answer["status"]["message"]
    # The API server's own ?timeout= shortens a longer configured deadline.
    running = start(resolve=slow_registry, deadline_s=20.0, failure_policy="Ignore")
    began = time.monotonic()
    answer = running.review(review(obj("Pod", pod_spec(OLD, {"pool": "h100"}))), path="/validate?timeout=1s")
    assert time.monotonic() - began < 2.0
    assert answer["allowed"] is True and any("longer than 0.5s" in w for w in answer["warnings"])


# ---- the command itself ----------------------------------------------------------------------------------------

EXE = str(Path(sys.executable).with_name("imagesmith"))


def test_the_serve_command_serves_and_stops_on_sigterm(pki: dict[str, Path]) -> None:
    args = [EXE, "webhook", "serve", "--tls-cert", str(pki["cert"]), "--tls-key", str(pki["key"])]
    args += [
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--nodes",
        str(NODES),
        "--images",
        str(IMAGES),
        "--mode",
        "deny",
    ]
    proc = subprocess.Popen(args, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        first = proc.stderr.readline()
        assert "serving https://127.0.0.1:" in first and "4 nodes" in first, first
        port = int(first.split("https://127.0.0.1:")[1].split("/")[0])
        client = ssl.create_default_context(cafile=str(pki["ca"]))
        conn = http.client.HTTPSConnection("localhost", port, context=client, timeout=10)
        r = review(obj("CronJob", pod_spec(NEW, {"pool": "t4"})))
        conn.request("POST", "/validate", body=json.dumps(r).encode())
        answer = json.loads(conn.getresponse().read())["response"]
        conn.close()
        assert answer["uid"] == r["request"]["uid"] and answer["allowed"] is False
        assert_refusal_names_everything(answer["status"]["message"])
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        rest = proc.stderr.read()
        assert r["request"]["uid"] in rest and "denied" in rest and "stopped" in rest
        assert "Traceback" not in rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_serve_watches_the_api_nodes_instead_of_fetching_them_per_review(
    pki: dict[str, Path], tmp_path: Path
) -> None:
    """Against the recorded API (tests/fleet/k8s_replay.py): one list, then the watch's events move the facts."""
    from tests.fleet.k8s_replay import start_replay

    with start_replay(tmp_path / "replay") as replay:
        args = [EXE, "webhook", "serve", "--tls-cert", str(pki["cert"]), "--tls-key", str(pki["key"])]
        args += [
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--kubeconfig",
            str(replay.kubeconfig),
            "--images",
            str(IMAGES),
        ]
        proc = subprocess.Popen(args, stderr=subprocess.PIPE, text=True)
        try:
            assert proc.stderr is not None
            first = proc.stderr.readline()
            assert "serving https://127.0.0.1:" in first and "kubeconfig" in first, first
            port = int(first.split("https://127.0.0.1:")[1].split("/")[0])
            client = ssl.create_default_context(cafile=str(pki["ca"]))

            def ask(selector: dict[str, str]) -> dict[str, Any]:
                conn = http.client.HTTPSConnection("localhost", port, context=client, timeout=10)
                try:
                    spec = pod_spec(NEW, selector)  # the recorded GPU nodes carry the gpu-operator's taint
                    spec["tolerations"] = [
                        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
                    ]
                    r = review(obj("Pod", spec))
                    conn.request("POST", "/validate", body=json.dumps(r).encode())
                    answer = json.loads(conn.getresponse().read())["response"]
                finally:
                    conn.close()
                assert answer["uid"] == r["request"]["uid"]
                assert isinstance(answer, dict)
                return answer

            h100 = ask({"node.kubernetes.io/instance-type": "p5.48xlarge"})  # H100, 570
            assert h100["allowed"] is True and "warnings" not in h100, h100
            a100 = ask({"node.kubernetes.io/instance-type": "p4de.24xlarge"})  # A100, 535
            assert a100["allowed"] is False and "gpu-a100-535-a" in a100["status"]["message"]
            assert "DRIVER_TOO_OLD" in a100["status"]["message"]
            # gpu-l4-550-b exists only through the watch's ADDED event (driver 550 < the image's 570.26 floor).
            deadline = time.monotonic() + 10
            added = ask({"kubernetes.io/hostname": "gpu-l4-550-b"})
            while "gpu-l4-550-b" not in added["status"]["message"] and time.monotonic() < deadline:
                time.sleep(0.2)
                added = ask({"kubernetes.io/hostname": "gpu-l4-550-b"})
            assert added["allowed"] is False and "gpu-l4-550-b" in added["status"]["message"], added
            lists = [q for q in replay.list_requests("/api/v1/nodes") if "continue" not in q]
            assert len(lists) == 1  # listed once (its later pages carry a continue token), then watched
            assert replay.watch_requests()
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--tls-cert", "/nonexistent/tls.crt", "--tls-key", "/nonexistent/tls.key"], "/nonexistent/tls.crt"),
        (["--tls-cert", str(NODES), "--tls-key", str(NODES)], "not a usable certificate"),
        (["--nodes", "/nonexistent/nodes.json"], "/nonexistent/nodes.json"),
        (["--images", "/nonexistent/images.json"], "/nonexistent/images.json"),
        (["--nodes", str(NODES), "--in-cluster"], "not both"),
    ],
)
def test_serve_errors_are_one_line_with_exit_code_2(
    pki: dict[str, Path], extra: list[str], needle: str
) -> None:
    args = ["webhook", "serve", "--tls-cert", str(pki["cert"]), "--tls-key", str(pki["key"]), "--port", "0"]
    if "--nodes" not in extra:
        args += ["--nodes", str(NODES)]
    args += ["--images", str(IMAGES), *extra]
    done = subprocess.run([EXE, *args], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("imagesmith: error:") and needle in lines[0], done.stderr


def test_a_port_in_use_is_an_environment_problem(pki: dict[str, Path]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        args = [EXE, "webhook", "serve", "--tls-cert", str(pki["cert"]), "--tls-key", str(pki["key"])]
        args += ["--host", "127.0.0.1", "--port", str(port), "--nodes", str(NODES), "--images", str(IMAGES)]
        done = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 3, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and f"127.0.0.1:{port}" in done.stderr


# ---- manifests, against the vendored Kubernetes schemas --------------------------------------------------------

SCHEMA_FOR_KIND = {
    ("v1", "Namespace"): "namespace-v1.json",
    ("v1", "ServiceAccount"): "serviceaccount-v1.json",
    ("v1", "Service"): "service-v1.json",
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): "clusterrole-rbac-v1.json",
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): "clusterrolebinding-rbac-v1.json",
    ("apps/v1", "Deployment"): "deployment-apps-v1.json",
    ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration"): (
        "validatingwebhookconfiguration-admissionregistration-v1.json"
    ),
}


def k8s_errors(document: dict[str, Any]) -> list[str]:
    from jsonschema import Draft202012Validator, FormatChecker
    from referencing import Registry, Resource

    name = SCHEMA_FOR_KIND.get((document.get("apiVersion"), document.get("kind")))  # type: ignore[arg-type]
    if name is None:
        return [f"no vendored schema for {document.get('apiVersion')} {document.get('kind')}"]
    definitions = json.loads((SCHEMAS / "_definitions.json").read_text(encoding="utf-8"))
    root = json.loads((SCHEMAS / name).read_text(encoding="utf-8"))
    registry: Registry[Any] = Registry().with_resources(
        [
            (definitions["$id"], Resource.from_contents(definitions)),
            (root["$id"], Resource.from_contents(root)),
        ]
    )
    validator = Draft202012Validator(root, registry=registry, format_checker=FormatChecker())
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
        for e in validator.iter_errors(document)
    ]


def _manifests(*args: str) -> tuple[str, list[dict[str, Any]]]:
    done = subprocess.run(
        [EXE, "webhook", "manifests", *args], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout, [d for d in yaml.safe_load_all(done.stdout) if d is not None]


def _by_kind(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    kinds = [d["kind"] for d in docs]
    assert len(kinds) == len(set(kinds))
    return {d["kind"]: d for d in docs}


@pytest.mark.parametrize(
    "args",
    [
        (),
        ("--mode", "warn", "--failure-policy", "Ignore", "--timeout-seconds", "2", "--no-create-namespace"),
        ("--namespace", "gpu-guard", "--image", "registry.example/platform/imagesmith@sha256:" + "a" * 64),
    ],
)
def test_every_rendered_manifest_validates_against_the_vendored_schemas(
    pki: dict[str, Path], args: tuple[str, ...]
) -> None:
    _, docs = _manifests(*args, "--ca-bundle", str(pki["ca"]))
    expected = {
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Deployment",
        "Service",
        "ValidatingWebhookConfiguration",
    }
    if "--no-create-namespace" not in args:
        expected.add("Namespace")
    assert set(_by_kind(docs)) == expected
    for doc in docs:
        assert k8s_errors(doc) == [], doc["kind"]


def test_the_schemas_catch_a_misspelled_field() -> None:
    docs = webhook_manifests.documents()
    vwc = copy.deepcopy(_by_kind(docs)["ValidatingWebhookConfiguration"])
    vwc["webhooks"][0]["failurePolicyy"] = "Fail"
    assert any("failurePolicyy" in e for e in k8s_errors(vwc))
    deployment = copy.deepcopy(_by_kind(docs)["Deployment"])
    deployment["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "8443"
    assert k8s_errors(deployment)


def test_the_webhook_configuration_says_what_the_issue_asks(pki: dict[str, Path]) -> None:
    text, docs = _manifests(
        "--namespace", "gpu-guard", "--ca-bundle", str(pki["ca"]), "--failure-policy", "Ignore", "--timeout-seconds", "7"
    )  # fmt: skip
    assert text.startswith("# imagesmith admission webhook")
    assert "&id" not in text and "*id" not in text  # plain YAML, no anchors for shared maps
    kinds = _by_kind(docs)
    (hook,) = kinds["ValidatingWebhookConfiguration"]["webhooks"]
    assert hook["admissionReviewVersions"] == ["v1"]
    assert hook["sideEffects"] == "None"
    assert hook["failurePolicy"] == "Ignore"
    assert hook["timeoutSeconds"] == 7
    (expr,) = hook["namespaceSelector"]["matchExpressions"]
    assert expr == {
        "key": "kubernetes.io/metadata.name",
        "operator": "NotIn",
        "values": ["gpu-guard", "kube-system"],
    }
    covered = {(g, r) for rule in hook["rules"] for g in rule["apiGroups"] for r in rule["resources"]}
    assert covered == {
        ("", "pods"),
        ("apps", "deployments"),
        ("apps", "statefulsets"),
        ("apps", "daemonsets"),
        ("batch", "jobs"),
        ("batch", "cronjobs"),
    }
    assert all(rule["operations"] == ["CREATE", "UPDATE"] for rule in hook["rules"])
    service_ref = hook["clientConfig"]["service"]
    assert service_ref == {
        "namespace": "gpu-guard",
        "name": "imagesmith-webhook",
        "path": "/validate",
        "port": 443,
    }
    assert base64.b64decode(hook["clientConfig"]["caBundle"]) == pki["ca"].read_bytes()

    service = kinds["Service"]
    assert service["metadata"]["namespace"] == "gpu-guard"
    (port,) = service["spec"]["ports"]
    assert port["port"] == 443 and port["targetPort"] == "https"

    role = kinds["ClusterRole"]
    assert role["rules"] == [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "watch"]}]
    binding = kinds["ClusterRoleBinding"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "imagesmith-webhook", "namespace": "gpu-guard"}
    ]

    pod = kinds["Deployment"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == kinds["ServiceAccount"]["metadata"]["name"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    assert container["ports"][0] == {"name": "https", "containerPort": 8443, "protocol": "TCP"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "https", "scheme": "HTTPS"}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["resources"]["requests"] and container["resources"]["limits"]
    secret_volume = next(v for v in pod["volumes"] if "secret" in v)
    mount = next(m for m in container["volumeMounts"] if m["name"] == secret_volume["name"])
    assert mount["readOnly"] is True
    # The container's arguments are ones the real command accepts, pointing at the mounted Secret's files.
    assert container["command"] == ["imagesmith"] and container["args"][:2] == ["webhook", "serve"]
    ctx = serve_command.make_context("serve", list(container["args"][2:]))
    params = ctx.params
    assert params["in_cluster"] is True and params["failure_policy"] == "Ignore" and params["port"] == 8443
    assert (
        params["tls_cert"] == f"{mount['mountPath']}/tls.crt"
        and params["tls_key"] == f"{mount['mountPath']}/tls.key"
    )
    assert 0 < params["deadline"] < hook["timeoutSeconds"]


def test_manifests_without_a_ca_bundle_say_so_and_bad_flags_are_one_line(tmp_path: Path) -> None:
    text, docs = _manifests()
    assert "caBundle" in text.split("---")[0]  # the header says what to set
    assert "caBundle" not in _by_kind(docs)["ValidatingWebhookConfiguration"]["webhooks"][0]["clientConfig"]
    not_pem = tmp_path / "ca.txt"
    not_pem.write_text("hello\n", encoding="utf-8")
    for args, needle in [
        (["--timeout-seconds", "31"], "--timeout-seconds"),
        (["--ca-bundle", str(not_pem)], "not a PEM"),
        (["--ca-bundle", str(tmp_path / "missing.pem")], "missing.pem"),
        (["--mode", "audit"], "--mode"),
    ]:
        done = subprocess.run(
            [EXE, "webhook", "manifests", *args], capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 2, (args, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and needle in lines[0] and "Traceback" not in done.stderr, done.stderr


def test_the_fixture_fleet_is_what_the_tests_assume() -> None:
    """Guards the fixture: two 535/T4 nodes, one 570/H100 node, one CPU node (the assertions above rely on it)."""
    from imagesmith.fleet.gfd import node_facts

    facts = {n.name: n for n in map(node_facts, _items())}
    assert set(facts) == {"t4-a", "t4-b", "h100-a", "cpu-a"}
    assert str(facts["t4-a"].driver) == "535.183.01" and str(facts["t4-a"].capability) == "7.5"
    assert str(facts["h100-a"].driver) == "570.124.06" and str(facts["h100-a"].capability) == "9.0"
    assert not facts["cpu-a"].has_gpu
