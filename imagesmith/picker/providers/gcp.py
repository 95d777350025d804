"""GCP: Cloud Billing Catalog SKUs + machine types. A VM's price is composed of its parts.

Most machine families have no per-machine SKU: the price is vCPUs x core SKU + GiB x RAM SKU + GPUs x GPU SKU.
Pricing only the host (or only the GPU) makes an a2 look several times cheaper than it is (skypilot-catalog #31).
Bundled local SSD (a2-ultragpu, a3-highgpu-8g) is not priced here; the row says so in its notes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from imagesmith.errors import DataError
from imagesmith.picker.model import InstanceRow
from imagesmith.picker.overlays import Overlays
from imagesmith.picker.providers.common import Input, Problems, expect, read_json

# SKUs whose descriptions carry these words price something else (commitments, sole tenancy, DWS/flex-start
# capacity…); letting them in overwrites the on-demand rate with a lower one (picker notes §4.3 #6).
_SKIP_WORDS = (
    "commitment",
    "sole tenancy",
    "reserved",
    "custom",
    "dws",
    "calendar mode",
    "flex",
    "premium",
    "extended",
)
_LOCAL_SSD_GIB = 375


@dataclass(frozen=True, kw_only=True)
class _Rate:
    price: float
    unit: str
    sku: str


def _unit_price(sku: dict[str, Any], where: str) -> tuple[float, str]:
    try:
        expr = sku["pricingInfo"][0]["pricingExpression"]
        tier = next(t for t in expr["tieredRates"] if float(t.get("startUsageAmount", 0)) == 0)
        money = tier["unitPrice"]
        return int(money.get("units", "0")) + int(money.get("nanos", 0)) / 1e9, str(expr["usageUnit"])
    except (KeyError, IndexError, StopIteration, ValueError, TypeError):
        raise DataError("SKU has no readable pricingInfo[0].pricingExpression", where=where) from None


def sku_rates(inp: Input, problems: Problems) -> dict[tuple[str, bool], _Rate]:
    """(description stem without 'running in …', spot?) -> rate, for SKUs offered in the input's region."""
    out: dict[tuple[str, bool], _Rate] = {}
    for path in inp.paths:
        data = expect(read_json(path), dict, str(path), "SKU list")
        for i, sku in enumerate(expect(data.get("skus"), list, str(path), "skus")):
            where = f"{path}: skus[{i}]"
            desc = str(sku.get("description", ""))
            usage = sku.get("category", {}).get("usageType")
            if usage not in ("OnDemand", "Preemptible") or inp.region not in sku.get("serviceRegions", []):
                continue
            if any(word in desc.lower() for word in _SKIP_WORDS):
                continue
            stem, sep, _ = desc.partition(" running in ")
            if not sep:
                continue
            spot = stem.startswith("Spot Preemptible ")
            if spot != (usage == "Preemptible"):
                problems.add(where, f"description {desc!r} disagrees with usageType {usage}")
                continue
            price, unit = _unit_price(sku, where)
            key = (stem.removeprefix("Spot Preemptible "), spot)
            if key in out and out[key].price != price:
                problems.add(
                    where,
                    f"SKU collision for {desc!r} in {inp.region}: {out[key].price:g} ({out[key].sku}) vs {price:g}",
                )
                continue
            out[key] = _Rate(price=price, unit=unit, sku=str(sku.get("skuId", "")))
    return out


def _compose(
    rates: dict[tuple[str, bool], _Rate],
    parts: list[tuple[str, str, float]],
    spot: bool,
) -> tuple[float | None, list[str]]:
    """Sum quantity x unit price over (stem, expected unit, quantity); None when a part has no SKU."""
    total = 0.0
    missing = []
    for stem, unit, qty in parts:
        rate = rates.get((stem, spot))
        if rate is None or rate.unit != unit:
            missing.append(stem)
            continue
        total += qty * rate.price
    return (None if missing else round(total, 6)), missing


def rows(inp: Input, types: Input, overlays: Overlays, problems: Problems) -> list[InstanceRow]:
    rates = sku_rates(inp, problems)
    data = expect(read_json(types.path), dict, str(types.path), "machine type list")
    machines = {m["name"]: m for m in expect(data.get("items"), list, str(types.path), "items")}
    combos: list[tuple[dict[str, Any], str, int]] = []
    for m in machines.values():
        accels = m.get("accelerators") or []
        if accels:
            combos.append((m, accels[0]["guestAcceleratorType"], int(accels[0]["guestAcceleratorCount"])))
        else:
            combos.append((m, "", 0))
    for att in overlays.gcp_attachable:
        if att.host not in machines:
            continue  # the host is not offered in this region
        combos.append((machines[att.host], att.accelerator, att.count))

    out = []
    for m, accel, count in combos:
        name = m["name"]
        where = f"{types.path}: {name}"
        stem = overlays.gcp_family_stem(name.split("-")[0])
        if stem is None:
            continue  # a family the overlay does not price (yet): leave it out rather than guess
        vcpus = float(m["guestCpus"])
        gib = m["memoryMb"] / 1024
        parts = [(f"{stem} Core", "h", vcpus), (f"{stem} Ram", "GiBy.h", gib)]
        gpu: dict[str, Any] = {}
        itype = name
        if accel:
            acc = overlays.gcp_accelerator(accel)
            if acc is None:
                problems.add(where, f"accelerator {accel!r} is not in overlays/gcp_skus.csv")
                continue
            model = overlays.gpu(acc.gpu_model)
            if model is None:
                problems.add(where, f"GPU model {acc.gpu_model!r} (overlays/gcp_skus.csv) is not in gpus.csv")
                continue
            parts.append((acc.sku_stem, "h", float(count)))
            gpu = {
                "gpu_vendor": model.vendor,
                "gpu_model": model.model,
                "gpu_count": float(count),
                "gpu_memory_nominal_gb_each": model.nominal_memory_gb,
            }
            if not m.get("accelerators"):
                itype = f"{name}+{model.model}x{count}"
        price, missing = _compose(rates, parts, spot=False)
        if price is None:
            problems.add(where, f"no on-demand SKU for {', '.join(missing)} in {inp.region}")
            continue
        spot, _ = _compose(rates, parts, spot=True)
        ssd = int(m.get("bundledLocalSsds", {}).get("partitionCount", 0)) * _LOCAL_SSD_GIB
        notes = [f"price = {' + '.join(f'{q:g} x {s}' for s, _, q in parts)}"]
        if ssd:
            notes.append(f"excludes bundled local SSD ({ssd} GiB)")
        out.append(
            InstanceRow(
                cloud="gcp",
                service=inp.service,
                region=inp.region,
                instance_type=itype,
                arch="arm64" if m.get("architecture") == "ARM64" else "x86_64",
                vcpus=vcpus,
                memory_gib=round(gib, 3),
                burstable=bool(m.get("isSharedCpu")) or overlays.burstable("gcp", name),
                price_on_demand=price,
                price_spot=spot,
                bundled_local_ssd_gib=ssd,
                source=inp.source,
                fetched_at=inp.fetched_at,
                notes="; ".join(notes),
                **gpu,
            )
        )
    return out
