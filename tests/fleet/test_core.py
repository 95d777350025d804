"""The fleet core on recorded cluster shapes: GFD labels -> node facts, the scheduler's hard rules, verdicts from
the matrix, what is at risk now, what a driver or GPU change breaks and fixes, the fleet as a policy."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from imagesmith.fleet import images, policy
from imagesmith.fleet.gfd import node_facts, with_driver, with_gpu
from imagesmith.fleet.scan import Judge, admit, scan, selector, upgrade
from imagesmith.fleet.workloads import may_land, workloads
from imagesmith.matrix import knowledge
from imagesmith.matrix.codes import Code
from imagesmith.matrix.versions import NvVersion
from tests.fleet.conftest import REGISTRY, load

CU126, CU128, CU130 = (f"{REGISTRY}:2.11-{v}-runtime" for v in ("cu126", "cu128", "cu130"))


@pytest.fixture
def nodes() -> list[Any]:
    return [node_facts(n) for n in load("nodes.json")["items"]]


@pytest.fixture
def pods() -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = load("pods.json")["items"]
    return items


@pytest.fixture
def judge(images_file: Path) -> Judge:
    return Judge(knowledge.load(), images.from_file(str(images_file)))


def by(nodes: list[Any], name: str) -> Any:
    return next(n for n in nodes if n.name == name)


def test_gfd_labels_both_generations(nodes: list[Any]) -> None:
    a100 = by(nodes, "gpu-a100-535-a")
    assert a100.driver == NvVersion.parse("535.183.01") and str(a100.capability) == "8.0"
    assert a100.gpu_product == "NVIDIA-A100-SXM4-80GB" and a100.gpu_count == 8
    legacy = by(nodes, "gpu-t4-legacy-a")  # only the deprecated nvidia.com/cuda.driver.{major,minor,rev}
    assert legacy.driver == NvVersion.parse("535.183.01") and legacy.has_gpu
    cpu = by(nodes, "cpu-general-a")
    assert not cpu.has_gpu and cpu.driver is None


def test_the_scheduler_hard_rules(nodes: list[Any], pods: list[dict[str, Any]]) -> None:
    trainer = next(p for p in pods if p["metadata"]["name"].startswith("trainer-"))
    allowed = {n.name for n in nodes if may_land(trainer["spec"], n)}
    assert allowed == {"gpu-a100-535-a", "gpu-a100-535-b"}  # nodeSelector on the product label
    shell = next(p for p in pods if p["metadata"]["name"] == "debug-shell")
    # No toleration for the nvidia.com/gpu taint: only the CPU node.
    assert {n.name for n in nodes if may_land(shell["spec"], n)} == {"cpu-general-a"}


def test_workloads_are_grouped_by_controller(pods: list[dict[str, Any]]) -> None:
    found = {(w.namespace, w.owner, w.name, w.image) for w in workloads(pods)}
    assert (
        "ml-train",
        "Deployment",
        "trainer",
        CU128,
    ) in found  # ReplicaSet trainer-<hash> -> its Deployment
    trainer = next(w for w in workloads(pods) if w.name == "trainer")
    assert len(trainer.pods) == 2


def test_scan_judges_every_workload_where_it_may_land(
    nodes: list[Any], pods: list[dict[str, Any]], judge: Judge
) -> None:
    report = scan(nodes, workloads(pods), judge)
    verdicts = {(w.workload.name, v.node): (v.verdict, v.codes) for w in report.workloads for v in w.nodes}
    # CUDA 12.8 on a 535 driver (CUDA 12.2): minor-version compatibility, with its caveat, never DRIVER_TOO_OLD.
    verdict, codes = verdicts[("trainer", "gpu-a100-535-a")]
    assert verdict == "works-with-caveats" and Code.MINOR_VERSION_COMPATIBLE in codes
    # CUDA 13.0 needs an R580 driver: it fails on every node it may land on (pending, so not "at risk").
    finetune = [v for (name, _), v in verdicts.items() if name.startswith("finetune")]
    assert finetune and all(v[0] == "fails" and Code.DRIVER_TOO_OLD in v[1] for v in finetune)
    assert report.at_risk == ()
    doc = report.to_json()
    assert doc["schema"] == 1 and {"namespace", "name", "owner", "image", "nodes"} <= set(doc["workloads"][0])


def test_a_running_pod_whose_image_fails_on_its_node_is_at_risk(
    nodes: list[Any], pods: list[dict[str, Any]], judge: Judge
) -> None:
    running = copy.deepcopy(pods)
    finetune = next(p for p in running if p["metadata"]["name"].startswith("finetune"))
    finetune["spec"]["nodeName"] = "gpu-a100-535-a"
    report = scan(nodes, workloads(running), judge)
    assert [(a.pod, a.node) for a in report.at_risk] == [(finetune["metadata"]["name"], "gpu-a100-535-a")]
    assert Code.DRIVER_TOO_OLD in report.at_risk[0].codes and report.to_json()["at_risk"][0]["image"] == CU130


def test_upgrade_impact(nodes: list[Any], pods: list[dict[str, Any]], judge: Judge) -> None:
    running = copy.deepcopy(pods)
    next(p for p in running if p["metadata"]["name"].startswith("finetune"))["spec"]["nodeName"] = (
        "gpu-a100-535-a"
    )
    found = workloads(running)
    r580 = NvVersion.parse("580.82.07")
    report = upgrade(
        nodes,
        found,
        judge,
        selected=selector("nvidia.com/gpu.product=NVIDIA-A100-SXM4-80GB"),
        change=lambda n: with_driver(n, r580),
    )
    assert report.selected == ("gpu-a100-535-a", "gpu-a100-535-b")
    assert [c.image for c in report.fixed] == [CU130] and report.breaks == () and report.unchanged == 2
    # The T4 pool re-equipped with B200s: the CUDA 12.6 build carries no Blackwell kernels.
    b200 = judge.kb.find_gpu("B200")
    gpu_swap = upgrade(
        nodes,
        found,
        judge,
        selected=selector("nvidia.com/gpu.product=Tesla-T4"),
        change=lambda n: with_gpu(with_driver(n, r580), b200.name, b200.capability),
    )
    assert [(c.pod, c.image) for c in gpu_swap.breaks] == [("feature-store-0", CU126)]
    assert Code.NO_KERNEL_IMAGE in gpu_swap.breaks[0].codes


def test_admission_refuses_an_image_that_runs_nowhere_it_may_land(
    nodes: list[Any], pods: list[dict[str, Any]], judge: Judge
) -> None:
    finetune = next(p for p in pods if p["metadata"]["name"].startswith("finetune"))
    decision = admit(finetune["spec"], nodes, judge)
    assert not decision.allowed and CU130 in decision.message and Code.DRIVER_TOO_OLD in decision.message
    trainer = next(p for p in pods if p["metadata"]["name"].startswith("trainer-"))
    assert admit(trainer["spec"], nodes, judge).allowed


def test_policy_from_the_fleet_and_drift(nodes: list[Any], tmp_path: Path) -> None:
    kb = knowledge.load()
    derived = policy.derive(kb, nodes)
    pools = {(p.gpu, str(p.driver)): p.count for p in derived.pools}
    assert pools[(kb.find_gpu("NVIDIA-A100-SXM4-80GB").name, "535.183.01")] == 2
    assert all(p.count >= 1 for p in derived.pools) and len(derived.pools) == 4
    from imagesmith.images.policy import load_policy

    text = (Path(__file__).resolve().parents[2] / "examples" / "team" / "imagesmith.yaml").read_text()
    section = policy.render(derived).split("fleet:\n", 1)[1]
    head = text.split("\nfleet:\n", 1)[0]
    mine = tmp_path / "imagesmith.yaml"
    mine.write_text(head + "\nfleet:\n" + section + "\n")
    assert policy.check(load_policy(mine, kb), derived) == ()  # the derived section round-trips
    drift = policy.check(
        load_policy(Path(__file__).resolve().parents[2] / "examples" / "team" / "imagesmith.yaml", kb),
        derived,
    )
    kinds = [d.kind for d in drift]
    # The H100, L4 and T4 pools run other drivers than planned; the cluster's A100 80GB pool is not planned;
    # the V100, A100 40GB and B200 entries plan for nodes the cluster does not run.
    assert sorted(kinds) == ["driver", "driver", "driver", "missing", "stale", "stale", "stale"], drift
    assert any(d.kind == "driver" and "535.183.01" in d.message and "T4" in d.message for d in drift)


def test_a_node_only_the_doctor_labelled_is_judged_from_its_labels(judge: Judge) -> None:
    """Where GFD does not run, the doctor's NFD feature labels (`doctor --nfd-features`) give the driver and GPU."""
    from imagesmith.contract.nfd import NFD_NAMESPACE, NodeFeatures, to_labels

    features = NodeFeatures(
        verdict="ok", driver="535.183.01", driver_major=535, cuda_max="12.2", gpu_count=1,
        gpu_product="NVIDIA-L4", gpu_compute="8.9",
    )  # fmt: skip
    labels = {NFD_NAMESPACE + k: v for k, v in to_labels(features).items()}
    node = node_facts(
        {
            "metadata": {"name": "doctor-only", "labels": labels},
            "status": {"allocatable": {"nvidia.com/gpu": "1"}},
        }
    )
    assert node.driver == NvVersion.parse("535.183.01") and str(node.capability) == "8.9"
    assert node.doctor_verdict == "ok" and node.gpu_product == "NVIDIA-L4"
    assert Code.DRIVER_TOO_OLD in judge.verdict(CU130, node).codes()


def test_the_streamed_json_is_the_report(nodes: list[Any], pods: list[dict[str, Any]], judge: Judge) -> None:
    import io
    import json

    running = copy.deepcopy(pods)
    next(p for p in running if p["metadata"]["name"].startswith("finetune"))["spec"]["nodeName"] = (
        "gpu-a100-535-a"
    )
    report = scan(nodes, workloads(running), judge)
    out = io.StringIO()
    report.write_json(out.write)
    assert json.loads(out.getvalue()) == report.to_json() and report.at_risk
