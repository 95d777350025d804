"""`--format`: the choice as a ready Kubernetes node selector, Karpenter requirements or SageMaker instance type."""

from __future__ import annotations

from imagesmith.errors import UsageError
from imagesmith.picker.model import InstanceRow, family
from imagesmith.picker.result import PickResult

FORMATS = ("k8s", "karpenter", "sagemaker")
_K8S_ARCH = {"x86_64": "amd64", "arm64": "arm64"}
# GKE names the attached GPU with its own label; the machine type alone does not say which GPU is attached.
_GKE_ACCELERATOR = {"T4": "nvidia-tesla-t4", "V100": "nvidia-tesla-v100", "A100": "nvidia-tesla-a100",
                    "A100-80GB": "nvidia-a100-80gb", "H100": "nvidia-h100-80gb", "L4": "nvidia-l4"}  # fmt: skip


def _machine(row: InstanceRow) -> str:
    return row.instance_type.split("+")[0]


def _zone_label(row: InstanceRow) -> tuple[str, str] | None:
    """The zone the row was priced in, as nodes are labelled: AWS catalogs name zone *ids* (use1-az1), which EKS
    nodes carry as topology.k8s.aws/zone-id (zone names differ per account); GCP and Azure name zones."""
    if not row.zone:
        return None
    if row.cloud == "aws":
        return "topology.k8s.aws/zone-id", row.zone
    return "topology.kubernetes.io/zone", row.zone


def k8s(row: InstanceRow, *, spot: bool) -> str:
    lines = [
        "nodeSelector:",
        f"  node.kubernetes.io/instance-type: {_machine(row)}",
        f"  kubernetes.io/arch: {_K8S_ARCH[row.arch]}",
        f"  topology.kubernetes.io/region: {row.region}",
    ]
    zone = _zone_label(row)
    if spot and zone is not None:
        # Spot prices are per zone: the answer's price holds only in the zone it was found in.
        lines.append(f"  {zone[0]}: {zone[1]}")
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
    families = ", ".join(dict.fromkeys(family(r) for r in rows))
    gpu = []
    counts = sorted({int(r.gpu_count) for r in rows if r.gpu_count >= 1})
    if counts:
        # Karpenter's well-known GPU label: the count rules out a bigger (pricier) size of the same family.
        gpu = [
            "  - key: karpenter.k8s.aws/instance-gpu-count",
            "    operator: In",
            f"    values: [{', '.join(f'{chr(34)}{c}{chr(34)}' for c in counts)}]",  # label values are strings
        ]
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
            "  - key: karpenter.k8s.aws/instance-family",
            "    operator: In",
            f"    values: [{families}]",
            *gpu,
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
