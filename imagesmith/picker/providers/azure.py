"""Azure: Retail Prices API pages + Resource SKUs (``az vm list-skus``).

The retail meters name no GPU and no memory size; the GPU model comes from the instance overlay, the counts from
the SKU capabilities (checked against the overlay). Spot meters priced exactly at the on-demand rate are sentinels in
published catalogs (SkyPilot's H100 rows), so they become "unknown" rather than a spot price.
"""

from __future__ import annotations

from typing import Any

from imagesmith.picker.model import InstanceRow
from imagesmith.picker.overlays import Overlays
from imagesmith.picker.providers.common import Input, Problems, expect, parse_price, read_json


def retail_prices(inp: Input, problems: Problems) -> dict[str, dict[bool, float]]:
    """armSkuName -> {spot?: hourly price} for Linux consumption meters in the input's region."""
    out: dict[str, dict[bool, float]] = {}
    for n, path in enumerate(inp.paths):
        page = expect(read_json(path), dict, str(path), "Retail Prices page")
        nxt = page.get("NextPageLink")
        if nxt and n == len(inp.paths) - 1:
            problems.add(
                str(path), "page has a NextPageLink but no next page was fetched (incomplete price list)"
            )
        for i, item in enumerate(expect(page.get("Items"), list, str(path), "Items")):
            where = f"{path}: Items[{i}]"
            if item.get("serviceName") != "Virtual Machines" or item.get("type") != "Consumption":
                continue
            if item.get("armRegionName") != inp.region or item.get("unitOfMeasure") != "1 Hour":
                continue
            product, sku_name = str(item.get("productName", "")), str(item.get("skuName", ""))
            if " Windows" in product or "Cloud Services" in product or "Low Priority" in sku_name:
                continue
            spot = "Spot" in sku_name
            price = parse_price(item.get("retailPrice"), where)
            arm = str(item.get("armSkuName", ""))
            prices = out.setdefault(arm, {})
            if spot in prices and prices[spot] != price:
                problems.add(
                    where,
                    f"two {'spot' if spot else 'on-demand'} meters for {arm}: {prices[spot]} and {price}",
                )
                continue
            prices[spot] = price
    return out


def _caps(sku: dict[str, Any]) -> dict[str, str]:
    return {c["name"]: c["value"] for c in sku.get("capabilities", [])}


def rows(inp: Input, specs_inp: Input, overlays: Overlays, problems: Problems) -> list[InstanceRow]:
    prices = retail_prices(inp, problems)
    skus = expect(read_json(specs_inp.path), list, str(specs_inp.path), "Resource SKU list")
    specs = {
        s["name"]: s
        for s in skus
        if s.get("resourceType") == "virtualMachines"
        and inp.region in [loc.lower() for loc in s.get("locations", [])]
    }
    out = []
    for arm, by_market in sorted(prices.items()):
        where = f"{specs_inp.path}: {arm}"
        spec = specs.get(arm)
        if spec is None:
            problems.add(f"{inp.path}: {arm}", "priced but has no Resource SKU entry")
            continue
        caps = _caps(spec)
        on_demand = by_market.get(False)
        spot = by_market.get(True)
        notes = []
        if spot is not None and on_demand is not None and spot == on_demand:
            spot = None
            notes.append("spot meter equal to on-demand treated as unknown (sentinel)")
        gpu: dict[str, Any] = {}
        api_gpus = float(caps.get("GPUs", 0))
        fix = overlays.instance_gpu("azure", arm)
        if api_gpus or fix is not None:
            model = overlays.gpu(fix.gpu_model) if fix is not None else None
            if model is None:
                problems.add(where, f"{api_gpus:g} GPUs but no GPU model in overlays/instance_gpus.csv")
                continue
            assert fix is not None
            count = api_gpus
            if fix.gpu_count is not None and fix.gpu_count != api_gpus:
                problems.add(
                    where,
                    f"Resource SKU says {api_gpus:g} GPUs, overlay instance_gpus.csv says {fix.gpu_count:g}",
                )
                count = fix.gpu_count
            gpu = {
                "gpu_vendor": model.vendor,
                "gpu_model": model.model,
                "gpu_count": count,
                "gpu_fractional": fix.fractional,
                "gpu_memory_nominal_gb_each": model.nominal_memory_gb,
            }
        out.append(
            InstanceRow(
                cloud="azure",
                service=inp.service,
                region=inp.region,
                instance_type=arm,
                arch="arm64" if caps.get("CpuArchitectureType", "x64").lower() == "arm64" else "x86_64",
                vcpus=float(caps["vCPUs"]),
                memory_gib=float(caps["MemoryGB"]),
                burstable=overlays.burstable("azure", arm),
                price_on_demand=on_demand,
                price_spot=spot,
                source=inp.source,
                fetched_at=inp.fetched_at,
                notes="; ".join(notes),
                **gpu,
            )
        )
    return out
