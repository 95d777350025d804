"""What a node offers pods, against worked examples computed by hand from each provider's published formula
(EKS: the node image's code; GKE and AKS: their docs), not from this module."""

from __future__ import annotations

import json

import pytest

from imagesmith.errors import UsageError
from imagesmith.picker.allocatable import offer, parse_headroom
from imagesmith.picker.model import InstanceRow
from tests.picker.test_cli import run

NONE = parse_headroom("0,0")


def node(cloud: str, itype: str, vcpus: float, gib: float, service: str = "") -> InstanceRow:
    services = {"aws": "ec2", "gcp": "compute-engine", "azure": "azure-vm"}
    return InstanceRow(
        cloud=cloud,
        service=service or services[cloud],
        region="r",
        instance_type=itype,
        arch="x86_64",
        vcpus=vcpus,
        memory_gib=gib,
        source="test",
    )


@pytest.mark.parametrize(
    ("cloud", "itype", "vcpus", "gib", "cpu_m", "mem_mib", "pods"),
    [
        # EKS: CPU ladder 6/1/0.5/0.25 %; memory 11 MiB x max pods (ENI table) + 255 MiB + 100 MiB eviction.
        ("aws", "m6i.xlarge", 4, 16, 3920, 15391, 58),
        ("aws", "m6i.2xlarge", 8, 32, 7910, 31775, 58),
        ("aws", "p4d.24xlarge", 96, 768, 95690, 777970, 737),
        # GKE: same CPU ladder; memory 25/20/10/6/2 % tiers + 100 MiB eviction.
        ("gcp", "n2-standard-4", 4, 16, 3920, 13621.6, None),
        ("gcp", "a2-highgpu-8g", 96, 768, 95690, 763681.12, None),
        # AKS >= 1.29: CPU 60/100/140/180...m; memory min(20 MiB x 250 pods + 50, 25 %) + 100 MiB eviction.
        ("azure", "Standard_D4s_v5", 4, 16, 3860, 12188, 250),
        ("azure", "Standard_D96s_v5", 96, 768, 94940, 781282, 250),
    ],
)
def test_worked_examples(
    cloud: str, itype: str, vcpus: float, gib: float, cpu_m: float, mem_mib: float, pods: int | None
) -> None:
    o = offer(node(cloud, itype, vcpus, gib), NONE)
    assert o is not None
    assert round(o.allocatable_cpus * 1000) == cpu_m
    assert o.allocatable_memory_gib * 1024 == pytest.approx(mem_mib, abs=0.01)
    assert o.max_pods == pods
    assert (o.cpus, o.memory_gib) == (o.allocatable_cpus, o.allocatable_memory_gib)  # no headroom asked


def test_headroom_is_taken_from_what_pods_are_offered() -> None:
    o = offer(node("aws", "m6i.xlarge", 4, 16), parse_headroom("0.2,0.5"))
    assert (
        o is not None and o.cpus == pytest.approx(3.72) and o.memory_gib == pytest.approx(15391 / 1024 - 0.5)
    )


def test_eks_type_without_eni_figures_assumes_110_pods_and_says_it_is_less_sure() -> None:
    o = offer(node("aws", "x9z.imaginary", 4, 16), NONE)
    assert o is not None and o.max_pods == 110 and o.confidence == "medium"
    assert o.allocatable_memory_gib * 1024 == pytest.approx(16384 - (11 * 110 + 255) - 100)


def test_no_kubelet_no_offer() -> None:
    assert offer(node("aws", "ml.g5.xlarge", 4, 16, service="sagemaker"), NONE) is None


@pytest.mark.parametrize("text", ["x", "0.2", "-1,0.5", "0.2,-1", "a,b"])
def test_bad_headroom_names_the_flag(text: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_headroom(text)
    assert info.value.one_line().startswith(f"--headroom {text!r}")


def test_cli_reports_capacity_and_what_pods_get() -> None:
    p = run("pick", "--cpus", "4", "--memory", "16", "--gpus", "1", "--cloud", "aws", "--json")
    assert p.returncode == 0, p.stderr
    answer = json.loads(p.stdout)
    o, choice = answer["offer"], answer["choice"]
    assert o["provider"] == "eks" and o["capacity"] == {
        "cpus": choice["vcpus"],
        "memory_gib": choice["memory_gib"],
    }
    assert o["for_pods"]["cpus"] >= 4 and o["for_pods"]["memory_gib"] >= 16
    assert choice["vcpus"] > 4  # a 4-vCPU node cannot give a pod 4 CPUs
    text = run("pick", "--cpus", "4", "--memory", "16", "--gpus", "1", "--cloud", "aws").stdout
    assert "for pods:" in text and "Amazon EKS allocatable" in text and "DaemonSet headroom 0.2 vCPU" in text
    machine = json.loads(
        run(
            "pick",
            "--cpus",
            "4",
            "--memory",
            "16",
            "--gpus",
            "1",
            "--cloud",
            "aws",
            "--fit",
            "machine",
            "--json",
        ).stdout
    )
    assert machine["offer"] is None and machine["choice"]["vcpus"] == 4


@pytest.mark.parametrize(
    ("args", "flag"), [(["--headroom", "lots"], "--headroom"), (["--fit", "vm"], "--fit")]
)
def test_cli_bad_fit_flags_exit_2_naming_the_flag(args: list[str], flag: str) -> None:
    p = run("pick", "--cpus", "4", *args)
    assert p.returncode == 2 and flag in p.stderr and "Traceback" not in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
