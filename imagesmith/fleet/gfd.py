"""Node facts from the cluster's own labels (the keys: ``imagesmith.contract.nodelabels``).

GFD (NVIDIA/k8s-device-plugin, docs/gpu-feature-discovery) labels every GPU node; two generations are in use:
- current: ``nvidia.com/cuda.driver-version.{major,minor,revision,full}``,
  ``nvidia.com/cuda.runtime-version.{major,minor,full}``, ``nvidia.com/gpu.compute.{major,minor}``,
  ``nvidia.com/gpu.product`` (spaces as dashes: ``NVIDIA-A100-SXM4-80GB``), ``nvidia.com/gpu.count``,
  ``nvidia.com/gpu.memory`` (MiB);
- deprecated but common: ``nvidia.com/cuda.driver.{major,minor,rev}``, ``nvidia.com/cuda.runtime.{major,minor}``.
Both are read; where both are present the current ones win. Versions are parsed here, once, into ``NvVersion``
and ``Capability``; a label that does not parse is kept as a note, never guessed at.
"""

from __future__ import annotations

from imagesmith.contract.nfd import read_node_features
from imagesmith.contract.nodelabels import (
    COMPUTE,
    COUNT,
    DRIVER_FULL,
    DRIVER_OLD,
    DRIVER_PARTS,
    GPU_RESOURCE,
    INSTANCE_TYPE,
    MEMORY,
    PRESENT,
    PRODUCT,
    RUNTIME_FULL,
    RUNTIME_OLD,
    RUNTIME_PARTS,
)
from imagesmith.contract.record import record, replace
from imagesmith.matrix.versions import Capability, NvVersion

TYPE_CHECKING = False  # mypy treats this name as True
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any


__all__ = [
    "GPU_RESOURCE",
    "INSTANCE_TYPE",
    "NodeFacts",
    "Taint",
    "node_facts",
    "nodes_of",
    "with_driver",
    "with_gpu",
]


@record
class Taint:
    key: str
    value: str
    effect: str


@record
class NodeFacts:
    """What one node is, as far as a GPU image cares; None where the labels do not say."""

    name: str
    labels: dict[str, str]
    driver: NvVersion | None
    cuda_runtime: NvVersion | None  # the newest CUDA the driver supports (GFD's runtime-version)
    gpu_product: str | None
    capability: Capability | None
    gpu_count: int  # allocatable nvidia.com/gpu (0 on CPU nodes and where the device plugin runs not)
    gpu_memory_mib: int | None
    taints: tuple[Taint, ...]
    allocatable: dict[str, str]
    notes: tuple[str, ...] = ()
    # The doctor's own verdict on the node (its NFD feature labels, `doctor --nfd-features`), when it ran there.
    doctor_verdict: str | None = None
    doctor_codes: tuple[str, ...] = ()

    @property
    def has_gpu(self) -> bool:
        return self.gpu_count > 0 or self.labels.get(PRESENT) == "true" or self.gpu_product is not None

    @property
    def group(self) -> tuple[str, str, str]:
        """Nodes with the same driver, GPU and capability get the same verdict: judged once per group."""
        return (str(self.driver or ""), self.gpu_product or "", str(self.capability or ""))

    def describe(self) -> str:
        if not self.has_gpu:
            return "no GPU"
        return f"{self.gpu_product or 'GPU'} ({self.capability.sm if self.capability else 'sm ?'}), driver {self.driver or '?'}"


def _version(
    labels: dict[str, str], full: str | None, parts: tuple[str, ...], notes: list[str]
) -> NvVersion | None:
    if full is not None and labels.get(full):
        found = NvVersion.leading(labels[full])
        if found is not None:
            return found
        notes.append(f"{full}={labels[full]!r} is not a version")
    values = [labels.get(p) for p in parts]
    if values[0] is None:
        return None
    text = ".".join(v for v in values if v)
    found = NvVersion.leading(text)
    if found is None:
        notes.append(f"{parts[0]}... = {text!r} is not a version")
    return found


def _int(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(str(text).strip())
    except ValueError:
        return None


def _gpu_quantity(text: str | None) -> int:
    """An extended resource is a whole number ("8"); anything else counts as none."""
    value = _int(text)
    return value if value is not None and value > 0 else 0


def node_facts(node: dict[str, Any]) -> NodeFacts:
    """The facts of one Node object (an item of `kubectl get nodes -o json`)."""
    meta = node.get("metadata") or {}
    labels = {str(k): str(v) for k, v in (meta.get("labels") or {}).items()}
    status = node.get("status") or {}
    allocatable = {str(k): str(v) for k, v in (status.get("allocatable") or {}).items()}
    notes: list[str] = []
    driver = _version(labels, DRIVER_FULL, DRIVER_PARTS, notes) or _version(labels, None, DRIVER_OLD, notes)
    runtime = _version(labels, RUNTIME_FULL, RUNTIME_PARTS, notes) or _version(
        labels, None, RUNTIME_OLD, notes
    )
    capability = None
    major, minor = labels.get(COMPUTE[0]), labels.get(COMPUTE[1])
    if major is not None:
        try:
            capability = Capability.parse(f"{major}.{minor or 0}")
        except ValueError:
            notes.append(f"{COMPUTE[0]}={major!r} is not a compute capability")
    taints = tuple(
        Taint(key=str(t.get("key", "")), value=str(t.get("value", "")), effect=str(t.get("effect", "")))
        for t in ((node.get("spec") or {}).get("taints") or ())
    )
    doctor = read_node_features(labels)
    if doctor is not None:
        # Where GFD does not run, the doctor's labels tell the driver and the GPU (GFD's win when both are there).
        if driver is None and doctor.driver:
            driver = NvVersion.leading(doctor.driver)
        if capability is None and doctor.gpu_compute:
            try:
                capability = Capability.parse(doctor.gpu_compute)
            except ValueError:
                notes.append(f"imagesmith-gpu-compute={doctor.gpu_compute!r} is not a compute capability")
    count = _gpu_quantity(allocatable.get(GPU_RESOURCE))
    if not count and labels.get(COUNT):
        count = _gpu_quantity(labels[COUNT])
    return NodeFacts(
        name=str(meta.get("name", "")),
        labels=labels,
        driver=driver,
        cuda_runtime=runtime,
        gpu_product=labels.get(PRODUCT) or (doctor.gpu_product if doctor else None),
        capability=capability,
        gpu_count=count,
        gpu_memory_mib=_int(labels.get(MEMORY)),
        taints=taints,
        allocatable=allocatable,
        notes=tuple(notes),
        doctor_verdict=doctor.verdict if doctor else None,
        doctor_codes=doctor.codes if doctor else (),
    )


def nodes_of(items: Iterable[dict[str, Any]]) -> list[NodeFacts]:
    """The facts of every Node object of a list (`kubectl get nodes -o json`'s items, or the API's)."""
    return [node_facts(n) for n in items]


def with_driver(node: NodeFacts, driver: NvVersion) -> NodeFacts:
    """The node after a driver upgrade (what `fleet upgrade --driver` asks about)."""
    return replace(node, driver=driver, cuda_runtime=None)


def with_gpu(node: NodeFacts, product: str, capability: Capability) -> NodeFacts:
    """The node pool after a GPU model change (`fleet upgrade --gpu`)."""
    return replace(node, gpu_product=product, capability=capability)
