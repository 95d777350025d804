"""Node and pod facts from files and from a Kubernetes API of the real shape (tests/fleet/k8s_replay.py).

No API server can run here: the API path talks, through the official client and a real TLS connection, to a
local HTTPS server replaying recorded responses (paginated lists, a watch stream, 401/403).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from imagesmith.errors import EXIT_BAD_INPUT, EXIT_ENVIRONMENT, DataError, EnvironmentProblem, UsageError
from imagesmith.fleet.cluster import ClusterSource, NodeCache, read_file, read_nodes, read_pods
from tests.fleet.k8s_replay import API_FIXTURES, Replay, make_cert, start_replay

FIXTURES = Path(__file__).parent / "fixtures"
NODES = str(FIXTURES / "nodes.json")
PODS = str(FIXTURES / "pods.json")
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def replay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replay]:
    with start_replay(tmp_path_factory.mktemp("replay")) as server:
        yield server


@pytest.fixture
def api(replay: Replay) -> ClusterSource:
    return ClusterSource.api(str(replay.kubeconfig))


def names(items: list[dict[str, Any]]) -> list[str]:
    return [i["metadata"]["name"] for i in items]


def problem_line(exc: pytest.ExceptionInfo[EnvironmentProblem]) -> str:
    line = exc.value.one_line()
    assert "\n" not in line
    assert exc.value.exit_code == EXIT_ENVIRONMENT
    return line


# --- files and the API agree


def test_files_and_api_give_the_same_items(api: ClusterSource) -> None:
    files = ClusterSource.files(NODES, PODS)
    nodes = read_nodes(api)
    assert nodes == read_nodes(files)
    assert len(nodes) == 6
    pods = read_pods(api)
    assert pods == read_pods(files)
    assert len(pods) == 8
    assert read_pods(api, "ml-train") == read_pods(files, "ml-train")
    assert names(read_pods(api, "ml-train")) == [
        "finetune-cu130-85f7d6c9b8-wl5rj",
        "trainer-7d9c6b5f4-9qwzl",
        "trainer-7d9c6b5f4-x7k2p",
    ]


def test_items_have_kubectls_shape_not_the_clients_models(api: ClusterSource) -> None:
    raw = json.loads((API_FIXTURES / "nodelist.json").read_text())["items"][0]
    assert "kind" not in raw and "managedFields" in raw["metadata"]  # what the API server sends
    for node in read_nodes(api):
        assert node["apiVersion"] == "v1" and node["kind"] == "Node"
        assert "managedFields" not in node["metadata"]
        assert "allocatable" in node["status"]  # camelCase API JSON, not the client's snake_case
    a100 = next(n for n in read_nodes(api) if n["metadata"]["name"] == "gpu-a100-535-a")
    assert a100["metadata"]["labels"]["nvidia.com/cuda.driver-version.full"] == "535.183.01"
    assert a100["status"]["allocatable"]["nvidia.com/gpu"] == "8"
    assert a100["spec"]["taints"] == [{"effect": "NoSchedule", "key": "nvidia.com/gpu", "value": "present"}]
    trainer = next(p for p in read_pods(api, "ml-train") if p["metadata"]["name"].startswith("trainer-"))
    assert trainer["spec"]["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}
    assert trainer["metadata"]["ownerReferences"][0]["kind"] == "ReplicaSet"


def test_lists_follow_the_continue_token(replay: Replay, api: ClusterSource) -> None:
    before = len(replay.list_requests("/api/v1/nodes"))
    assert len(read_nodes(api)) == 6  # the server caps a page at 4: two pages
    pages = replay.list_requests("/api/v1/nodes")[before:]
    assert [q.get("limit") for q in pages] == ["500", "500"]
    assert "continue" not in pages[0] and pages[1]["continue"]

    before = len(replay.list_requests("/api/v1/nodes"))
    assert len(read_nodes(api, page_limit=2)) == 6
    assert len(replay.list_requests("/api/v1/nodes")[before:]) == 3


def test_pods_of_one_namespace_use_the_namespaced_path(replay: Replay, api: ClusterSource) -> None:
    assert names(read_pods(api, "default")) == ["debug-shell"]
    assert replay.list_requests("/api/v1/namespaces/default/pods")
    assert read_pods(api, "no-such-namespace") == []


# --- API failures: one line naming the server, the kubeconfig and the status


def test_wrong_token_names_the_server_and_401(replay: Replay) -> None:
    with pytest.raises(EnvironmentProblem) as exc:
        read_nodes(ClusterSource.api(str(replay.kubeconfig), "wrong-token"))
    line = problem_line(exc)
    assert replay.url in line and "HTTP 401 Unauthorized" in line
    assert str(replay.kubeconfig) in line and "context wrong-token" in line


def test_unreachable_server_names_the_server(replay: Replay) -> None:
    started = time.monotonic()
    with pytest.raises(EnvironmentProblem) as exc:
        read_pods(ClusterSource.api(str(replay.kubeconfig), "unreachable"))
    line = problem_line(exc)
    assert replay.unreachable_url in line and "connection refused" in line
    assert "list pods" in line
    assert time.monotonic() - started < 10


def test_forbidden_namespace_names_403_and_rbac(replay: Replay, api: ClusterSource) -> None:
    with pytest.raises(EnvironmentProblem) as exc:
        read_pods(api, "kube-system")
    line = problem_line(exc)
    assert "HTTP 403 Forbidden" in line and 'cannot list resource "pods"' in line and "RBAC" in line


def test_untrusted_certificate_is_one_line(replay: Replay, tmp_path: Path) -> None:
    other_ca, _ = make_cert(tmp_path)
    config = json.loads(replay.kubeconfig.read_text())
    config["clusters"][0]["cluster"]["certificate-authority"] = str(other_ca)
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(json.dumps(config))
    with pytest.raises(EnvironmentProblem) as exc:
        read_nodes(ClusterSource.api(str(kubeconfig)))
    line = problem_line(exc)
    assert replay.url in line and "certificate verify failed" in line and "certificate-authority" in line


@pytest.mark.parametrize(
    ("content", "context", "expect"),
    [
        (None, None, "kubeconfig"),
        ("clusters: [\n  - name: x\n  bad: [", None, "kubeconfig"),
        ("REPLAY", "no-such-context", "no-such-context"),
    ],
)
def test_bad_kubeconfig_is_one_line(
    replay: Replay, tmp_path: Path, content: str | None, context: str | None, expect: str
) -> None:
    path = tmp_path / "kubeconfig"
    if content == "REPLAY":
        path.write_text(replay.kubeconfig.read_text())
    elif content is not None:
        path.write_text(content)
    with pytest.raises(EnvironmentProblem) as exc:
        read_nodes(ClusterSource.api(str(path), context))
    line = problem_line(exc)
    assert str(path) in line and expect in line


def test_kubernetes_is_imported_lazily_and_its_absence_is_one_line(tmp_path: Path) -> None:
    # -S: no site-packages, so the kubernetes package is really absent; cluster.py needs only the stdlib
    code = (
        "import sys; sys.path.insert(0, sys.argv[1])\n"
        "from imagesmith.fleet.cluster import ClusterSource, read_nodes\n"
        "from imagesmith.errors import ImagesmithError\n"
        "print('kubernetes' in sys.modules)\n"
        "print(read_nodes(ClusterSource.files(sys.argv[2]))[0]['kind'])\n"
        "try:\n    read_nodes(ClusterSource.api(sys.argv[3]))\n"
        "except ImagesmithError as e:\n    print(e.exit_code, e.one_line())\n"
    )
    out = subprocess.run(
        [sys.executable, "-S", "-c", code, str(REPO), NODES, str(tmp_path / "kubeconfig")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert out[0] == "False" and out[1] == "Node"
    assert out[2].startswith(f"{EXIT_ENVIRONMENT} ") and "pip install 'imagesmith[fleet]'" in out[2]
    assert "--nodes FILE --pods FILE" in out[2]


# --- files: a List, a <Kind>List or one object; every problem names the file


def test_files_accept_list_kinds_and_single_objects(tmp_path: Path) -> None:
    nodes = json.loads(Path(NODES).read_text())
    single = tmp_path / "node.json"
    single.write_text(json.dumps(nodes["items"][2], indent=4))
    assert read_nodes(ClusterSource.files(str(single))) == [nodes["items"][2]]
    nodelist = tmp_path / "nodelist.json"
    nodelist.write_text(json.dumps({**nodes, "kind": "NodeList"}))
    assert read_nodes(ClusterSource.files(str(nodelist))) == nodes["items"]
    empty = tmp_path / "empty.json"
    empty.write_text('{"apiVersion": "v1", "items": [], "kind": "List", "metadata": {"resourceVersion": ""}}')
    assert read_pods(ClusterSource.files(None, str(empty))) == []


def test_malformed_json_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "nodes.json"
    path.write_text(
        '{\n    "kind": "List",\n    "items": [\n        {"metadata": {"name": "a"},}\n    ]\n}\n'
    )
    with pytest.raises(DataError) as exc:
        read_nodes(ClusterSource.files(str(path)))
    line = exc.value.one_line()
    assert line.startswith(f"{path}:4: not valid JSON") and "\n" not in line
    assert exc.value.exit_code == EXIT_BAD_INPUT


def test_yaml_gets_a_hint(tmp_path: Path) -> None:
    path = tmp_path / "nodes.yaml"
    path.write_text("apiVersion: v1\nitems: []\nkind: List\n")
    with pytest.raises(DataError) as exc:
        read_nodes(ClusterSource.files(str(path)))
    assert exc.value.one_line().startswith(f"{path}:1: not valid JSON")
    assert "looks like YAML; use kubectl get nodes -o json" in exc.value.one_line()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[1, 2]", "expected a NodeList or a Node object, found a JSON array"),
        ('{"kind": "PodList", "items": []}', "expected a NodeList, List or Node, found kind 'PodList'"),
        ('{"items": []}', "expected a NodeList, List or Node, found no 'kind'"),
        ('{"kind": "List", "items": {}}', "'items' is a JSON object, not an array"),
        (
            '{"kind": "List", "items": [{"kind": "Pod", "metadata": {"name": "p"}}]}',
            "items[0] is a Pod, not a Node",
        ),
        ('{"kind": "List", "items": [{"kind": "Node", "metadata": {}}]}', "items[0] has no metadata.name"),
        ('{"kind": "List", "items": ["gpu-a"]}', "items[0] is a JSON string, not a Node object"),
    ],
)
def test_wrong_shapes_name_the_file(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "nodes.json"
    path.write_text(text)
    with pytest.raises(DataError) as exc:
        read_file(str(path), "Node")
    assert exc.value.one_line().startswith(f"{path}: {message}")


def test_pods_given_as_nodes_is_named() -> None:
    with pytest.raises(DataError) as exc:
        read_nodes(ClusterSource.files(PODS))
    assert "items[0] is a Pod, not a Node" in exc.value.one_line() and PODS in exc.value.one_line()


def test_missing_files_are_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as exc:
        read_pods(ClusterSource.files(NODES, str(tmp_path / "nope.json")))
    assert exc.value.one_line().startswith(f"{tmp_path / 'nope.json'}: no such file")
    with pytest.raises(UsageError) as exc:
        read_pods(ClusterSource.files(NODES, None))
    assert exc.value.one_line().startswith("--pods: no pods file given")
    with pytest.raises(UsageError):
        read_nodes(ClusterSource.files(str(tmp_path)))


# --- the watched node list


def test_node_cache_watches_and_relists_after_410(tmp_path: Path) -> None:
    with start_replay(tmp_path / "replay") as replay:
        source = ClusterSource.api(str(replay.kubeconfig))
        cache = NodeCache(source, watch_timeout_s=5, retry_s=0.1).start()
        try:
            listed = names(cache.snapshot())
            assert listed == names(read_nodes(ClusterSource.files(NODES)))
            # the recorded watch: MODIFIED gpu-l4-550-a, ADDED gpu-l4-550-b, DELETED cpu-general-a
            assert cache.wait_for(lambda nodes: "cpu-general-a" not in names(nodes), 10)
            nodes = {n["metadata"]["name"]: n for n in cache.snapshot()}
            assert "gpu-l4-550-b" in nodes and nodes["gpu-l4-550-b"]["kind"] == "Node"
            assert nodes["gpu-l4-550-a"]["metadata"]["labels"]["nvidia.com/gpu-driver-upgrade-state"] == (
                "upgrade-required"
            )
            assert cache.lists == 1
            watch = replay.watch_requests()[0]
            assert (
                watch["resourceVersion"]
                == json.loads((API_FIXTURES / "nodelist.json").read_text())["metadata"]["resourceVersion"]
            )

            # history the watch never saw (a node joined while it was expired): only a re-list finds it
            joined = json.loads(json.dumps(nodes["gpu-l4-550-b"]))
            joined["metadata"]["name"] = "gpu-l4-550-c"
            replay.put_node(joined)
            replay.expire_watch()
            assert cache.wait_for(lambda nodes: "gpu-l4-550-c" in names(nodes), 10)
            assert cache.lists == 2 and cache.last_error is None
            assert names(cache.snapshot()) == names(read_nodes(source))
            # and the watch goes on from the new list's version
            assert cache.wait_for(lambda _nodes: len(replay.watch_requests()) >= 2, 10)
        finally:
            started = time.monotonic()
            cache.stop()
            assert time.monotonic() - started < 3


def test_node_cache_from_a_file_reads_it_once() -> None:
    with NodeCache(ClusterSource.files(NODES)) as cache:
        assert cache.snapshot() == read_nodes(ClusterSource.files(NODES))
        assert cache.lists == 1 and cache.version == 1


def test_node_cache_start_fails_as_one_line(replay: Replay) -> None:
    with pytest.raises(EnvironmentProblem) as exc:
        NodeCache(ClusterSource.api(str(replay.kubeconfig), "wrong-token")).start()
    assert "HTTP 401" in problem_line(exc)
