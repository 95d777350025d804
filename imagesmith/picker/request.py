"""`PickRequest`: the one list of the picker's constraints.

The CLI's flags are generated from it (name, help, kind), `imagesmith.picker.pick` takes it, the query is
built from it, and the answer describes it. A new constraint is one field here and its help in ``HELP`` (the
module refuses to load when the two disagree), not five edits. Values are kept as the user typed them (the
grammar of docs/picker.md); the query parses them. A ``record``, not a dataclass: ``dataclasses`` costs ~15 ms
to import and `imagesmith pick` is timed against interpreter start.
"""

from __future__ import annotations

from imagesmith.contract.record import as_dict, record

TYPE_CHECKING = False  # mypy treats this name as True
if TYPE_CHECKING:
    from typing import Any


@record
class PickRequest:
    cpus: str | None = None
    memory: str | None = None
    gpus: str | None = None
    gpu: str | None = None
    gpu_memory: str | None = None
    gpu_memory_basis: str = "nominal"
    min_cc: str | None = None
    arch: str | None = None
    cloud: str | None = None
    service: str | None = None
    region: str | None = None
    zone: str | None = None
    instance_type: str | None = None
    spot: bool = False
    max_price: str | float | None = None
    allow_fractional: bool = False
    no_burstable: bool = False
    image: str | None = None
    fit: str = "pods"
    headroom: str = "0.2,0.5"
    top: int = 5


# Help text and choices per field, in the fields' order: what the CLI shows.
HELP: dict[str, dict[str, Any]] = {
    "cpus": {
        "help": "vCPUs a pod requests: 4 or 4+ (the node offers pods at least 4), 4..16 (and the machine has at most 16); with --fit machine: 4 (exact), 4+ (at least), 4..16."
    },
    "memory": {"help": "Memory in GiB, like --cpus: 16, 16+, 16..64, or 4x (GiB per vCPU of the machine)."},
    "gpus": {
        "help": "GPU count: 1, 1+, 2..8 (fractions like 0.25+ with --allow-fractional). Default 0 unless a GPU flag is given."
    },
    "gpu": {"help": "GPU model(s), comma-separated; A100 also matches A100-80GB."},
    "gpu_memory": {"help": "Memory per GPU: 24+, 40..80 (basis: --gpu-memory-basis)."},
    "gpu_memory_basis": {
        "help": "nominal = marketed GB (A10G 24); reported = what the provider API reports (A10G 22.35 GiB).",
        "choices": ("nominal", "reported"),
    },
    "min_cc": {"help": "Minimum compute capability, e.g. 8.0."},
    "arch": {"help": "x86_64 (default), arm64 or any."},
    "cloud": {"help": "aws, gcp, azure (comma-separated)."},
    "service": {"help": "ec2, sagemaker, compute-engine, azure-vm (default: the VM services)."},
    "region": {"help": "Region(s), comma-separated (us-east-1, europe-west4)."},
    "zone": {
        "help": "Zone(s), comma-separated, as the catalog names them (AWS zone ids use1-az1, GCP us-central1-a); rows priced per region only are left out."
    },
    "instance_type": {
        "help": "Only these instance type(s), comma-separated: does a given machine fit (and why not)?"
    },
    "spot": {"help": "Rank by spot price (rows without one are rejected)."},
    "max_price": {"help": "Upper bound in USD per hour."},
    "allow_fractional": {"help": "Allow partitions of one GPU (g6f: 1/8 of an L4)."},
    "no_burstable": {"help": "Exclude burstable instances (t3)."},
    "image": {
        "help": "Only GPUs the image's framework build can run on: a curated tag, a spec (torch==2.8.0+cu128) or "
        "any image whose imagesmith labels name its build (read from its registry without pulling)."
    },
    "fit": {
        "help": "pods = --cpus/--memory are a pod's requests, held to what the node offers pods (capacity less the provider's kubelet reservations and --headroom); machine = held to the nameplate.",
        "choices": ("pods", "machine"),
    },
    "headroom": {"help": "CPUS,GIB the node's DaemonSets request (taken from what pods are offered)."},
    "top": {"help": "How many alternatives and rejected rows to show."},
}
FIELDS: tuple[str, ...] = PickRequest.__record_fields__  # type: ignore[attr-defined]
if tuple(HELP) != FIELDS:  # one list: a field without help (or help for no field) is a bug, caught at import
    raise RuntimeError(f"PickRequest fields {FIELDS} and HELP {tuple(HELP)} disagree")


def default(name: str) -> Any:
    return getattr(PickRequest, name)


def flags() -> list[tuple[str, str, dict[str, Any]]]:
    """(field name, --flag, help and choices) for every constraint, in declaration order: what the CLI exposes."""
    return [(name, "--" + name.replace("_", "-"), dict(HELP[name])) for name in FIELDS]


def from_options(options: dict[str, Any]) -> PickRequest:
    """The request from a mapping that holds (at least) the fields, as click hands them over."""
    return PickRequest(**{name: options[name] for name in FIELDS if name in options})


def asked(request: PickRequest) -> dict[str, Any]:
    return as_dict(request)
