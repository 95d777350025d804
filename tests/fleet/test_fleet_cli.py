"""`imagesmith fleet` as a platform engineer runs it: real subprocesses on recorded `kubectl -o json` files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.fleet.conftest import FIXTURES

NODES, PODS = str(FIXTURES / "nodes.json"), str(FIXTURES / "pods.json")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "imagesmith", "fleet", *args], capture_output=True, text=True, timeout=120
    )


def test_scan_json_and_exit(images_file: Path, tmp_path: Path) -> None:
    p = run("scan", "--nodes", NODES, "--pods", PODS, "--images", str(images_file), "--json")
    assert p.returncode == 0, p.stderr  # nothing at risk in the recorded cluster
    doc = json.loads(p.stdout)
    assert doc["schema"] == 1 and doc["at_risk"] == []
    assert {"namespace", "name", "owner", "image", "nodes"} <= set(doc["workloads"][0])
    pods: dict[str, Any] = json.loads(Path(PODS).read_text())
    next(p for p in pods["items"] if p["metadata"]["name"].startswith("finetune"))["spec"]["nodeName"] = (
        "gpu-l4-550-a"
    )
    moved = tmp_path / "pods.json"
    moved.write_text(json.dumps(pods))
    p = run("scan", "--nodes", NODES, "--pods", str(moved), "--images", str(images_file))
    assert p.returncode == 1 and "at risk now (1 running pod(s)" in p.stdout and "gpu-l4-550-a" in p.stdout
    assert p.stderr.strip().count("\n") == 0 and "at risk" in p.stderr


def test_upgrade_names_what_breaks(images_file: Path) -> None:
    args = ["upgrade", "--nodes", NODES, "--pods", PODS, "--images", str(images_file), "--json"]
    p = run(*args, "-l", "nvidia.com/gpu.product=NVIDIA-A100-SXM4-80GB", "--driver", "470.256.02")
    assert p.returncode == 1
    doc = json.loads(p.stdout)
    assert doc["schema"] == 1 and len(doc["breaks"]) == 2 and doc["fixed"] == [] and doc["unchanged"] == 0
    assert all("DRIVER_TOO_OLD" in b["codes"] for b in doc["breaks"])
    p = run(*args, "-l", "nvidia.com/gpu.product=NVIDIA-H100-80GB-HBM3", "--driver", "580.82.07")
    assert p.returncode == 0 and json.loads(p.stdout)["breaks"] == []


@pytest.mark.parametrize(
    ("args", "needle", "code"),
    [
        (
            ["upgrade", "--nodes", NODES, "--pods", PODS, "-l", "pool=none", "--driver", "580.82.07"],
            "--selector",
            2,
        ),
        (["upgrade", "--nodes", NODES, "--pods", PODS, "-l", "a=b"], "--driver VERSION", 2),
        (["upgrade", "--nodes", NODES, "--pods", PODS, "-l", "a=b", "--driver", "five"], "--driver", 2),
        (["scan", "--nodes", NODES], "--pods", 2),
        (["scan", "--nodes", "/nonexistent.json", "--pods", PODS], "/nonexistent.json", 2),
        (["scan", "--nodes", NODES, "--pods", PODS, "--images", "/nonexistent.json"], "/nonexistent.json", 2),
    ],
)
def test_bad_input_is_one_line(args: list[str], needle: str, code: int) -> None:
    p = run(*args)
    assert p.returncode == code and needle in p.stderr and "Traceback" not in p.stderr, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1


def test_policy_from_the_cluster_plans_images_for_it(tmp_path: Path) -> None:
    """The joint with the image planner: the fleet section derived from the cluster is a policy `images plan`
    accepts, and the plan covers every pool of the cluster."""
    p = run("policy", "--nodes", NODES)
    assert p.returncode == 0 and p.stdout.startswith("# The fleet as the cluster reports it")
    root = Path(__file__).resolve().parents[2] / "examples" / "team"
    head = (root / "imagesmith.yaml").read_text().split("\nfleet:\n", 1)[0]
    policy = tmp_path / "imagesmith.yaml"
    policy.write_text(head + "\n" + p.stdout.split("\n", 1)[1] + "\n")
    assert run("policy", "--nodes", NODES, "--check", str(policy)).returncode == 0
    plan = subprocess.run(
        [sys.executable, "-m", "imagesmith", "images", "plan", "--policy", str(policy), "--json"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert plan.returncode == 0, plan.stderr
    pools = {e["name"] for e in json.loads(run("policy", "--nodes", NODES, "--json").stdout)["fleet"]}
    planned = json.loads(plan.stdout)
    covered = {n for image in planned["images"] for n in image.get("nodes", ())}
    assert pools and pools <= covered and planned["uncovered"] == [], (pools, covered)
    drift = run("policy", "--nodes", NODES, "--check", str(root / "imagesmith.yaml"), "--json")
    assert drift.returncode == 1 and {d["kind"] for d in json.loads(drift.stdout)["drift"]} >= {
        "driver",
        "stale",
    }


def test_scan_reads_the_cluster_api_like_the_files(images_file: Path, tmp_path: Path) -> None:
    """The joint with the API: the same answer from a kubeconfig pointing at an API server (a local HTTPS server
    replaying recorded responses of the real shape, the official client talking to it) as from kubectl's files."""
    from tests.fleet.k8s_replay import start_replay

    with start_replay(tmp_path / "api") as api:
        via_api = run("scan", "--kubeconfig", str(api.kubeconfig), "--images", str(images_file), "--json")
        refused = run("scan", "--kubeconfig", str(api.kubeconfig), "--context", "wrong-token")
    via_files = run("scan", "--nodes", NODES, "--pods", PODS, "--images", str(images_file), "--json")
    assert via_api.returncode == via_files.returncode == 0, via_api.stderr
    assert json.loads(via_api.stdout) == json.loads(via_files.stdout)
    assert (
        refused.returncode == 3 and "401" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    )
