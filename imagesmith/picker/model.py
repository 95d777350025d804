"""The catalog row: one instance type in one region of one cloud service, with its price and provenance."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

SERVICES = ("ec2", "sagemaker", "compute-engine", "azure-vm")
CLOUDS = ("aws", "gcp", "azure")


@dataclass(frozen=True, kw_only=True, slots=True)
class InstanceRow:
    cloud: str
    service: str
    region: str
    instance_type: str
    arch: str
    vcpus: float
    memory_gib: float
    burstable: bool = False
    gpu_vendor: str = ""
    gpu_model: str = ""
    # Fractions (0.125 of an L4) are kept as such; `gpu_fractional` says the row is a partition of one GPU.
    gpu_count: float = 0.0
    gpu_fractional: bool = False
    # What the provider's spec API reports per GPU (MiB/1024), and the marketed size; they differ (A10G 22.35 vs 24).
    gpu_memory_gib_each: float | None = None
    gpu_memory_nominal_gb_each: float | None = None
    compute_capability: str = ""
    cc_source: str = ""  # "matrix" | "overlay" | "" (no GPU)
    price_on_demand: float | None = None  # None = no published price; never 0
    price_spot: float | None = None
    bundled_local_ssd_gib: int = 0
    source: str = ""
    fetched_at: str = ""
    notes: str = ""

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.cloud, self.service, self.region, self.instance_type)

    def price(self, *, spot: bool) -> float | None:
        return self.price_spot if spot else self.price_on_demand

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(InstanceRow))


def family(row: InstanceRow) -> str:
    """The instance family as its cloud names it: m6i (m6i.xlarge), a3 (a3-highgpu-8g), n1 (n1-standard-4+T4x1),
    NCads_H100_v5 (Standard_NC40ads_H100_v5: the series, digits of the size taken out)."""
    name = row.instance_type.split("+")[0]
    if row.cloud == "aws":
        base = name.removeprefix("ml.")
        dot = base.find(".")  # m6i.xlarge: the family is what precedes the size
        return base[:dot] if dot >= 0 else base
    if row.cloud == "gcp":
        return name.split("-")[0]
    size = name.removeprefix("Standard_")
    head, _, tail = size.partition("_")
    letters = "".join(c for c in head if not c.isdigit())
    return f"{letters}_{tail}" if tail else letters


_FLOATS = {"vcpus", "memory_gib", "gpu_count"}
_OPT_FLOATS = {"gpu_memory_gib_each", "gpu_memory_nominal_gb_each", "price_on_demand", "price_spot"}
_BOOLS = {"burstable", "gpu_fractional"}
_INTS = {"bundled_local_ssd_gib"}


def _fmt_float(value: float) -> str:
    return f"{value:.6f}".rstrip("0").rstrip(".") if value != int(value) else str(int(value))


def row_to_csv(row: InstanceRow) -> list[str]:
    out: list[str] = []
    for name in COLUMNS:
        value = getattr(row, name)
        if value is None:
            out.append("")
        elif isinstance(value, bool):
            out.append("yes" if value else "no")
        elif isinstance(value, float):
            out.append(_fmt_float(value))
        else:
            out.append(str(value))
    return out


def row_from_csv(values: dict[str, str]) -> InstanceRow:
    """Parse one catalog CSV record; raises ValueError/KeyError on malformed input (the caller adds file:line)."""
    kw: dict[str, Any] = {}
    for name in COLUMNS:
        text = values[name]
        if name in _FLOATS:
            kw[name] = float(text)
        elif name in _OPT_FLOATS:
            kw[name] = float(text) if text else None
        elif name in _BOOLS:
            if text not in ("yes", "no"):
                raise ValueError(f"{name} must be yes or no, not {text!r}")
            kw[name] = text == "yes"
        elif name in _INTS:
            kw[name] = int(text or 0)
        else:
            kw[name] = text
    return InstanceRow(**kw)
