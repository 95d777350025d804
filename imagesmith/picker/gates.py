"""Validation gates a generated catalog must pass before it replaces the previous one.

Each gate answers one trap seen in published catalogs (picker notes §4.3): placeholder prices (0, 700), spot above
on-demand, GPU counts that contradict the overlay or the memory figures, duplicate keys, a fetch that silently
returned a fraction of the rows.
"""

from __future__ import annotations

from imagesmith.picker.model import CLOUDS, CONFIDENCES, SERVICES, InstanceRow
from imagesmith.picker.overlays import Overlays
from imagesmith.picker.providers.common import Problems

# Prices published catalogs use to mean "not really offered" (SkyPilot GCP TPU rows carry 700.0).
PLACEHOLDER_PRICES = frozenset({700.0, 9999.0, 99999.0})
# Reported GiB vs nominal GB per GPU: A10G 22.35/24 = 0.93, H100 80/80 = 1.0. Outside this band the figure is
# probably a total, a different unit, or a wrong model.
MEMORY_RATIO = (0.85, 1.15)
# A new catalog with fewer than this share of the previous row count is taken for a broken fetch.
MIN_ROW_SHARE = 0.8


def _price(row: InstanceRow, label: str, value: float | None, where: str, problems: Problems) -> None:
    if value is None:
        return
    if value <= 0:
        problems.add(where, f"{label} price {value:g} <= 0 (a missing price must stay empty, never 0)")
    elif value in PLACEHOLDER_PRICES:
        problems.add(where, f"{label} price {value:g} is a known placeholder")


def check_row(row: InstanceRow, ov: Overlays, problems: Problems) -> None:
    where = f"{row.cloud}/{row.service}/{row.region}/{row.instance_type}"
    if row.cloud not in CLOUDS or row.service not in SERVICES:
        problems.add(where, f"unknown cloud/service {row.cloud}/{row.service}")
    if row.vcpus <= 0 or row.memory_gib <= 0:
        problems.add(where, f"vCPUs {row.vcpus:g} / memory {row.memory_gib:g} GiB must be positive")
    _price(row, "on-demand", row.price_on_demand, where, problems)
    _price(row, "spot", row.price_spot, where, problems)
    if (
        row.price_spot is not None
        and row.price_on_demand is not None
        and row.price_spot > row.price_on_demand
    ):
        problems.add(where, f"spot {row.price_spot:g} > on-demand {row.price_on_demand:g}")
    if row.price_spot is not None and row.price_on_demand is None:
        problems.add(where, "spot price without an on-demand price")
    if not row.source:
        problems.add(where, "row has no source")
    if row.confidence not in CONFIDENCES:
        problems.add(where, f"confidence {row.confidence!r} is not one of {', '.join(CONFIDENCES)}")
    _check_gpu(row, ov, where, problems)


def _check_gpu(row: InstanceRow, ov: Overlays, where: str, problems: Problems) -> None:
    if not row.gpu_model:
        if row.gpu_count or row.gpu_memory_gib_each or row.compute_capability:
            problems.add(where, "GPU figures on a row without a GPU model")
        return
    if row.gpu_count <= 0:
        problems.add(where, f"GPU model {row.gpu_model} with GPU count {row.gpu_count:g}")
        return
    whole = row.gpu_count == int(row.gpu_count)
    if row.gpu_fractional == whole or (row.gpu_fractional and row.gpu_count >= 1):
        problems.add(where, f"GPU count {row.gpu_count:g} inconsistent with fractional={row.gpu_fractional}")
    fix = ov.instance_gpu(row.cloud, row.instance_type.removeprefix("ml."))
    if fix is not None and fix.gpu_count is not None and fix.gpu_count != row.gpu_count:
        problems.add(where, f"GPU count {row.gpu_count:g}, overlay instance_gpus.csv says {fix.gpu_count:g}")
    if row.gpu_memory_nominal_gb_each is None:
        problems.add(where, "GPU row without nominal GPU memory")
    elif row.gpu_memory_gib_each is not None:
        ratio = row.gpu_memory_gib_each / row.gpu_memory_nominal_gb_each
        if not MEMORY_RATIO[0] <= ratio <= MEMORY_RATIO[1]:
            problems.add(
                where,
                f"reported GPU memory {row.gpu_memory_gib_each:g} GiB vs nominal {row.gpu_memory_nominal_gb_each:g} GB "
                "per GPU: is one of them a total?",
            )
    if not row.compute_capability:
        problems.add(where, f"no compute capability for {row.gpu_model}")


def check(
    rows: list[InstanceRow],
    ov: Overlays,
    problems: Problems,
    *,
    previous_count: int | None,
    allow_shrink: bool = False,
) -> None:
    seen: set[tuple[str, str, str, str, str]] = set()
    for row in rows:
        if row.key in seen:
            problems.add("/".join(row.key), "duplicate row")
        seen.add(row.key)
        check_row(row, ov, problems)
    if not rows:
        problems.add("catalog", "no rows")
    if previous_count and not allow_shrink and len(rows) < MIN_ROW_SHARE * previous_count:
        problems.add(
            "catalog",
            f"{len(rows)} rows against {previous_count} in the previous catalog (collapsed fetch?); "
            "pass --allow-shrink if intended",
        )
