"""What a node offers to pods: its capacity less the managed-Kubernetes provider's reservations and a stated
headroom for DaemonSets.

A pod asking for 4 CPUs and 16 GiB does not fit a 4-vCPU/16-GiB node: the kubelet keeps kube-reserved CPU and
memory and an eviction threshold back, so the scheduler sees less (the node reports it as `allocatable`), and the
node's DaemonSets (CNI, kube-proxy, CSI, the NVIDIA device plugin, exporters) take their requests out of that.
The formulas are data (``data/reservations.csv``, ``data/eni_max_pods.csv``), each with its source; this module
only applies them. Capacity is the nameplate (the kubelet sees the guest's MemTotal, a little less): the headroom
covers that gap too, which is why it is stated in every answer instead of hidden.
"""

from __future__ import annotations

import os

from imagesmith.contract.record import record
from imagesmith.errors import DataError, UsageError

TYPE_CHECKING = (
    False  # typing, dataclasses, csv and pathlib cost ~30 ms to import; `imagesmith pick` is timed
)
if TYPE_CHECKING:
    from imagesmith.picker.model import InstanceRow

DATA_DIR = os.path.join(os.path.dirname(__file__), "data")
PROVIDER = {"aws": "eks", "gcp": "gke", "azure": "aks"}
PROVIDER_NAME = {"eks": "Amazon EKS", "gke": "Google GKE", "aks": "Azure AKS"}
# Requests of the DaemonSets a GPU node runs (kube-proxy 100m, the CNI agent, the CSI node plugin, the NVIDIA
# device plugin, a metrics exporter) add up to about this on the three providers' defaults; `--headroom` says
# what a fleet really runs (`kubectl describe node`: "Allocated resources" with no workload scheduled).
DEFAULT_HEADROOM = "0.2,0.5"
_MIB_PER_GIB = 1024.0


@record
class Headroom:
    cpus: float
    memory_gib: float
    text: str


@record
class Offer:
    """The node's capacity, what the kubelet reserves, and what is left for the workload's pods."""

    provider: str  # eks | gke | aks
    capacity_cpus: float
    capacity_memory_gib: float
    reserved_cpus: float  # kube-reserved (+ system-reserved: none of the three sets it)
    reserved_memory_gib: float  # kube-reserved + the eviction threshold
    allocatable_cpus: float  # what the node reports as allocatable
    allocatable_memory_gib: float
    headroom: Headroom
    max_pods: int | None
    confidence: str

    @property
    def cpus(self) -> float:
        """What one workload pod may request: allocatable less the DaemonSets' headroom."""
        return max(self.allocatable_cpus - self.headroom.cpus, 0.0)

    @property
    def memory_gib(self) -> float:
        return max(self.allocatable_memory_gib - self.headroom.memory_gib, 0.0)

    def to_json(self) -> dict[str, object]:
        return {
            "provider": self.provider,
            "capacity": {"cpus": self.capacity_cpus, "memory_gib": self.capacity_memory_gib},
            "allocatable": {
                "cpus": round(self.allocatable_cpus, 3),
                "memory_gib": round(self.allocatable_memory_gib, 3),
            },
            "daemonset_headroom": {"cpus": self.headroom.cpus, "memory_gib": self.headroom.memory_gib},
            "for_pods": {"cpus": round(self.cpus, 3), "memory_gib": round(self.memory_gib, 3)},
            "max_pods": self.max_pods,
            "confidence": self.confidence,
        }


@record
class _Term:
    resource: str
    term: str
    low: float | None
    high: float | None
    value: float
    confidence: str


_TERMS: dict[str, tuple[_Term, ...]] = {}
_MAX_PODS: dict[str, int] = {}
_OFFERS: dict[tuple[str, str, str, float, float, float, float], Offer | None] = {}


def _rows(path: str) -> list[tuple[int, dict[str, str]]]:
    """(line number, record) of a data CSV whose leading '#' lines are comments. Its values hold no commas or
    quotes (a test holds the files to that), so a split reads it; ``csv`` would cost ~6 ms to import."""
    with open(path, encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    out: list[tuple[int, dict[str, str]]] = []
    header: list[str] | None = None
    for number, line in enumerate(lines, 1):
        if line.startswith("#") or not line:
            continue
        cells = line.split(",")
        if header is None:
            header = cells
        elif len(cells) != len(header):
            raise DataError(f"{len(cells)} fields, the header has {len(header)}", where=f"{path}:{number}")
        else:
            out.append((number, dict(zip(header, cells, strict=True))))
    return out


def _num(text: str, where: str) -> float | None:
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise DataError(f"not a number: {text!r}", where=where) from None


def _load() -> None:
    if _TERMS:
        return
    path = os.path.join(DATA_DIR, "reservations.csv")
    terms: dict[str, list[_Term]] = {}
    for line, rec in _rows(path):
        where = f"{path}:{line}"
        value = _num(rec["value"], where)
        if value is None or rec["confidence"] not in ("high", "medium", "low"):
            raise DataError("a term needs a value and a confidence", where=where)
        terms.setdefault(rec["provider"], []).append(
            _Term(
                resource=rec["resource"],
                term=rec["term"],
                low=_num(rec["low"], where),
                high=_num(rec["high"], where),
                value=value,
                confidence=rec["confidence"],
            )
        )
    path = os.path.join(DATA_DIR, "eni_max_pods.csv")
    for line, rec in _rows(path):
        pods = _num(rec["max_pods"], f"{path}:{line}")
        if pods is None or pods < 1:
            raise DataError("max_pods must be a positive number", where=f"{path}:{line}")
        _MAX_PODS[rec["instance_type"]] = int(pods)
    _TERMS.update({k: tuple(v) for k, v in terms.items()})


def parse_headroom(text: str, *, flag: str = "--headroom") -> Headroom:
    """``CPUS,GIB`` (0.2,0.5): what the node's DaemonSets request, taken from what is left for the workload."""
    cpus, sep, memory = text.partition(",")
    try:
        value = Headroom(cpus=float(cpus), memory_gib=float(memory), text=text)
    except ValueError:
        raise UsageError("write CPUS,GIB (e.g. 0.2,0.5)", where=f"{flag} {text!r}") from None
    if not sep or value.cpus < 0 or value.memory_gib < 0:
        raise UsageError("write CPUS,GIB, both 0 or more (e.g. 0.2,0.5)", where=f"{flag} {text!r}")
    return value


def _tiers(terms: tuple[_Term, ...], resource: str, amount: float) -> float:
    """Sum of share x the part of ``amount`` inside each tier."""
    total = 0.0
    for t in terms:
        if t.resource == resource and t.term == "tier":
            low = t.low or 0.0
            high = t.high if t.high is not None else amount
            if amount > low:
                total += t.value * (min(amount, high) - low)
    return total


def _cpu_millicores(terms: tuple[_Term, ...], vcpus: float) -> int:
    """The EKS code's integer arithmetic (millicores x basis points // 10000 per tier), which the AKS table
    matches too: a float sum would lose a millicore to 79.999..."""
    total = round(vcpus * 1000)
    reserved = 0
    for t in terms:
        if t.resource == "cpu" and t.term == "tier":
            low = round((t.low or 0.0) * 1000)
            high = round(t.high * 1000) if t.high is not None else total
            if total > low:
                reserved += (min(total, high) - low) * round(t.value * 10000) // 10000
    return reserved


def _one(terms: tuple[_Term, ...], resource: str, term: str) -> _Term | None:
    return next((t for t in terms if t.resource == resource and t.term == term), None)


def offer(row: InstanceRow, headroom: Headroom) -> Offer | None:
    """The row's node as its cloud's managed Kubernetes runs it; None where no kubelet runs (SageMaker)."""
    # One machine is one offer in all its regions and zones; keyed by plain values (a record's hash builds a
    # tuple of its fields on every call).
    key = (
        row.cloud,
        row.service,
        row.instance_type,
        row.vcpus,
        row.memory_gib,
        headroom.cpus,
        headroom.memory_gib,
    )
    if key in _OFFERS:
        return _OFFERS[key]
    result = None
    provider = PROVIDER.get(row.cloud)
    if provider is not None and row.service != "sagemaker":
        _load()
        result = _compute(provider, _TERMS[provider], row, headroom)
    _OFFERS[key] = result
    return result


def _compute(provider: str, terms: tuple[_Term, ...], row: InstanceRow, headroom: Headroom) -> Offer:
    used = []
    cpu_m = float(_cpu_millicores(terms, row.vcpus))
    used += [t for t in terms if t.resource == "cpu"]
    mem_mib = row.memory_gib * _MIB_PER_GIB
    max_pods: int | None = None
    reserved_mib = 0.0
    small = _one(terms, "memory", "small_mib")
    per_pod = _one(terms, "memory", "per_pod_mib")
    if small is not None and small.high is not None and row.memory_gib < small.high:
        reserved_mib = small.value
        used.append(small)
    elif per_pod is not None:
        pods_term = _one(terms, "pods", "default_pods")
        known = _MAX_PODS.get(row.instance_type) if provider == "eks" else None
        max_pods = known if known is not None else int(pods_term.value) if pods_term is not None else 110
        fixed = _one(terms, "memory", "fixed_mib")
        reserved_mib = per_pod.value * max_pods + (fixed.value if fixed is not None else 0.0)
        cap = _one(terms, "memory", "share_cap")
        if cap is not None:
            reserved_mib = min(reserved_mib, cap.value * mem_mib)
        used += [t for t in (per_pod, fixed, cap, pods_term) if t is not None]
        if provider == "eks" and known is None:
            # The type's ENI figures are not in the table: the node image falls back to 110 as well.
            used.append(
                _Term(resource="pods", term="guess", low=None, high=None, value=110, confidence="medium")
            )
    else:
        reserved_mib = _tiers(terms, "memory", row.memory_gib) * _MIB_PER_GIB
        used += [t for t in terms if t.resource == "memory" and t.term == "tier"]
    eviction = _one(terms, "memory", "eviction_mib")
    if eviction is not None:
        reserved_mib += eviction.value
        used.append(eviction)
    order = ("low", "medium", "high")
    confidence = min((t.confidence for t in used), key=order.index, default="medium")
    return Offer(
        provider=provider,
        capacity_cpus=row.vcpus,
        capacity_memory_gib=row.memory_gib,
        reserved_cpus=cpu_m / 1000.0,
        reserved_memory_gib=reserved_mib / _MIB_PER_GIB,
        allocatable_cpus=row.vcpus - cpu_m / 1000.0,
        allocatable_memory_gib=max(row.memory_gib - reserved_mib / _MIB_PER_GIB, 0.0),
        headroom=headroom,
        max_pods=max_pods,
        confidence=confidence,
    )
