"""The catalog row: one instance type in one region of one cloud service, with its price and provenance."""

from __future__ import annotations

from imagesmith.contract.record import as_dict, record

TYPE_CHECKING = False  # typing and dataclasses cost ~25 ms to import here; `imagesmith pick` is timed
if TYPE_CHECKING:
    from typing import Any

SERVICES = ("ec2", "sagemaker", "compute-engine", "azure-vm")
CLOUDS = ("aws", "gcp", "azure")
CONFIDENCES = ("high", "medium", "low")


@record
class InstanceRow:
    cloud: str
    service: str
    region: str
    instance_type: str
    arch: str
    # "" where the source prices a region as a whole (price files); a zone id where it prices zones (SkyPilot's
    # catalogs: spot prices differ per zone, and not every zone offers every type).
    zone: str = ""
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
    # How far the row's figures can be trusted, from its source: high = the provider's own machine-readable
    # listing (or a generated catalog of it); medium = composed or derived (a size ladder, a SKU composition);
    # low = quoted by hand from a secondary page.
    confidence: str = "medium"
    fetched_at: str = ""
    notes: str = ""

    @property
    def key(self) -> tuple[str, str, str, str, str]:
        return (self.cloud, self.service, self.region, self.zone, self.instance_type)

    @property
    def where(self) -> str:
        """Where the row is priced: us-east-1, or us-east-1/use1-az1 for a zone."""
        return f"{self.region}/{self.zone}" if self.zone else self.region

    def price(self, *, spot: bool) -> float | None:
        return self.price_spot if spot else self.price_on_demand

    def to_json(self) -> dict[str, Any]:
        return as_dict(self)


COLUMNS: tuple[str, ...] = InstanceRow.__record_fields__  # type: ignore[attr-defined]


def from_values(values: dict[str, Any]) -> InstanceRow:
    """A row from its complete, already typed field values (a cached parse): no per-field checks, ~10x faster
    than the keyword constructor over a multi-region catalog. The values must hold every column."""
    row: InstanceRow = object.__new__(InstanceRow)
    row.__dict__.update(values)
    return row


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
