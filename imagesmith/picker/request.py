"""`PickRequest`: the one list of the picker's constraints.

The CLI's flags are generated from it (name, help, kind), `imagesmith.picker.pick` takes it, the query is
built from it, and the answer describes it. A new constraint is one field here, not five edits.
Values are kept as the user typed them (the grammar of docs/picker.md); the query parses them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any


def _flag(help_text: str, **extra: Any) -> Any:
    return field(default=extra.pop("default", None), metadata={"help": help_text, **extra})


@dataclass(frozen=True, kw_only=True, slots=True)
class PickRequest:
    cpus: str | None = _flag("vCPUs: 4 (exact), 4+ (at least), 4..16.")
    memory: str | None = _flag("Host memory in GiB: 16, 16+, 16..64, or 4x (GiB per vCPU).")
    gpus: str | None = _flag(
        "GPU count: 1, 1+, 2..8 (fractions like 0.25+ with --allow-fractional). Default 0 unless a GPU flag is given."
    )
    gpu: str | None = _flag("GPU model(s), comma-separated; A100 also matches A100-80GB.")
    gpu_memory: str | None = _flag("Memory per GPU: 24+, 40..80 (basis: --gpu-memory-basis).")
    gpu_memory_basis: str = _flag(
        "nominal = marketed GB (A10G 24); reported = what the provider API reports (A10G 22.35 GiB).",
        default="nominal",
        choices=("nominal", "reported"),
    )
    min_cc: str | None = _flag("Minimum compute capability, e.g. 8.0.")
    arch: str | None = _flag("x86_64 (default), arm64 or any.")
    cloud: str | None = _flag("aws, gcp, azure (comma-separated).")
    service: str | None = _flag("ec2, sagemaker, compute-engine, azure-vm (default: the VM services).")
    region: str | None = _flag("Region(s), comma-separated.")
    spot: bool = _flag("Rank by spot price (rows without one are rejected).", default=False)
    max_price: str | float | None = _flag("Upper bound in USD per hour.")
    allow_fractional: bool = _flag("Allow partitions of one GPU (g6f: 1/8 of an L4).", default=False)
    no_burstable: bool = _flag("Exclude burstable instances (t3).", default=False)
    image: str | None = _flag(
        "Only GPUs the image's framework build can run on (curated tag or torch==2.8.0+cu128)."
    )
    top: int = _flag("How many alternatives and rejected rows to show.", default=5)


def flags() -> list[tuple[str, str, dict[str, Any]]]:
    """(field name, --flag, metadata) for every constraint, in declaration order: what the CLI exposes."""
    return [(f.name, "--" + f.name.replace("_", "-"), dict(f.metadata)) for f in fields(PickRequest)]


def from_options(options: dict[str, Any]) -> PickRequest:
    """The request from a mapping that holds (at least) the fields, as click hands them over."""
    return PickRequest(**{f.name: options[f.name] for f in fields(PickRequest) if f.name in options})
