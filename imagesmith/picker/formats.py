"""`--format`: the choice as a ready Kubernetes node selector, Karpenter requirements or SageMaker instance type."""

from __future__ import annotations

from imagesmith.errors import UsageError
from imagesmith.picker.model import InstanceRow
from imagesmith.picker.result import PickResult

FORMATS = ("k8s", "karpenter", "sagemaker")
_K8S_ARCH = {"x86_64": "amd64", "arm64": "arm64"}
# GKE names the attached GPU with its own label; the machine type alone does not say which GPU is attached.
_GKE_ACCELERATOR = {"T4": "nvidia-tesla-t4", "V100": "nvidia-tesla-v100", "A100": "nvidia-tesla-a100",
                    "A100-80GB": "nvidia-a100-80gb", "H100": "nvidia-h100-80gb", "L4": "nvidia-l4"}  # fmt: skip


def _machine(row: InstanceRow) -> str:
    return row.instance_type.split("+")[0]


def k8s(row: InstanceRow, *, spot: bool) -> str:
    lines = [
        "nodeSelector:",
        f"  node.kubernetes.io/instance-type: {_machine(row)}",
        f"  kubernetes.io/arch: {_K8S_ARCH[row.arch]}",
        f"  topology.kubernetes.io/region: {row.region}",
    ]
    if row.cloud == "gcp" and row.gpu_model in _GKE_ACCELERATOR:
        lines.append(f"  cloud.google.com/gke-accelerator: {_GKE_ACCELERATOR[row.gpu_model]}")
    if spot:
        label = {"aws": "karpenter.sh/capacity-type: spot", "gcp": "cloud.google.com/gke-spot: \"true\"",
                 "azure": "kubernetes.azure.com/scalesetpriority: spot"}[row.cloud]  # fmt: skip
        lines.append(f"  {label}")
    return "\n".join(lines)


def karpenter(rows: list[InstanceRow], *, spot: bool) -> str:
    if not rows or any(r.cloud != "aws" or r.service != "ec2" for r in rows):
        raise UsageError(
            "Karpenter requirements need AWS EC2 rows", where="--format karpenter", hint="add --cloud aws"
        )
    types = ", ".join(dict.fromkeys(r.instance_type for r in rows))
    archs = ", ".join(dict.fromkeys(_K8S_ARCH[r.arch] for r in rows))
    return "\n".join(
        [
            "requirements:",
            "  - key: node.kubernetes.io/instance-type",
            "    operator: In",
            f"    values: [{types}]",
            "  - key: karpenter.sh/capacity-type",
            "    operator: In",
            f"    values: [{'spot' if spot else 'on-demand'}]",
            "  - key: kubernetes.io/arch",
            "    operator: In",
            f"    values: [{archs}]",
            "  - key: topology.kubernetes.io/region",
            "    operator: In",
            f"    values: [{rows[0].region}]",
        ]
    )


def render(fmt: str, result: PickResult) -> str:
    row = result.choice
    assert row is not None
    if fmt == "k8s":
        return k8s(row, spot=result.spot)
    if fmt == "karpenter":
        # The alternatives go in too: Karpenter picks among all allowed types at launch time.
        return karpenter([row, *result.alternatives], spot=result.spot)
    if fmt == "sagemaker":
        if row.service != "sagemaker":
            raise UsageError("a SageMaker instance type needs a sagemaker row", where="--format sagemaker")
        return row.instance_type
    raise UsageError(f"known formats: {', '.join(FORMATS)}", where=f"--format {fmt!r}")
