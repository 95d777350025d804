"""AWS: Price List offer files (JSON or CSV) + DescribeInstanceTypes + DescribeSpotPriceHistory.

The offer file holds every SKU of an instance type (Windows, dedicated, reservations, SQL…); only one of them is the
Linux on-demand hourly rate. The filters are the ones SkyPilot, gpuhunt, Karpenter and ec2instances.info converge
on; a second surviving SKU with a different price is reported instead of letting the last one win.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from imagesmith.errors import DataError
from imagesmith.picker.model import InstanceRow
from imagesmith.picker.overlays import Overlays
from imagesmith.picker.providers.common import Input, Problems, expect, parse_price, read_json

# CSV twin column -> JSON attribute name.
_CSV_ATTRS = {
    "Instance Type": "instanceType",
    "Operating System": "operatingSystem",
    "Tenancy": "tenancy",
    "Pre Installed S/W": "preInstalledSw",
    "CapacityStatus": "capacitystatus",
    "usageType": "usagetype",
    "Market Option": "marketoption",
    "Component": "component",
    "vCPU": "vcpu",
    "Memory": "memory",
    "GPU": "gpu",
    "Region Code": "regionCode",
}

_EC2_FAMILIES = {"Compute Instance", "Compute Instance (bare metal)"}


def _keep(service: str, family: str, attrs: dict[str, str]) -> bool:
    if service == "sagemaker":
        # Training is the rate the reference tables quote; Hosting/Processing/Notebook are separate SKUs.
        return family == "ML Instance" and attrs.get("component") == "Training"
    return (
        family in _EC2_FAMILIES
        and attrs.get("operatingSystem") == "Linux"
        and attrs.get("tenancy") == "Shared"
        and attrs.get("preInstalledSw") == "NA"
        and attrs.get("capacitystatus") == "Used"
        and attrs.get("marketoption", "OnDemand") == "OnDemand"
        and "BoxUsage" in attrs.get("usagetype", "")
    )


def _offer_json(path: Path, service: str) -> Iterator[tuple[str, str, float | None, dict[str, str]]]:
    data = expect(read_json(path), dict, str(path), "offer file")
    products = expect(data.get("products"), dict, str(path), "products")
    on_demand = expect(data.get("terms", {}).get("OnDemand", {}), dict, str(path), "terms.OnDemand")
    for sku, product in products.items():
        attrs = product.get("attributes", {})
        if not _keep(service, product.get("productFamily", ""), attrs):
            continue
        terms = on_demand.get(sku)
        if not terms:
            yield sku, attrs.get("instanceType", ""), None, attrs
            continue
        dims = [d for term in terms.values() for d in term.get("priceDimensions", {}).values()]
        where = f"{path}: sku {sku}"
        if len(dims) != 1 or dims[0].get("unit") != "Hrs" or "USD" not in dims[0].get("pricePerUnit", {}):
            raise DataError("expected exactly one hourly USD on-demand price dimension", where=where)
        yield sku, attrs.get("instanceType", ""), parse_price(dims[0]["pricePerUnit"]["USD"], where), attrs


def _offer_csv(path: Path, service: str) -> Iterator[tuple[str, str, float | None, dict[str, str]]]:
    try:
        lines = path.read_text().splitlines(keepends=True)
    except FileNotFoundError:
        raise DataError("file not found", where=str(path)) from None
    # The CSV twin opens with five disclaimer rows (FormatVersion, Disclaimer, Publication Date, Version, OfferCode).
    reader = csv.DictReader(lines[5:])
    for field in ("SKU", "TermType", "PricePerUnit", "Unit", "Currency", "Instance Type"):
        if field not in (reader.fieldnames or ()):
            raise DataError(f"offer CSV has no {field!r} column", where=f"{path}:6")
    # A product with no OnDemand term (p5e: capacity blocks only) still appears under its other terms; it is kept
    # with no price, as the JSON form keeps it.
    seen: dict[str, tuple[str, float | None, dict[str, str]]] = {}
    for number, rec in enumerate(reader, start=7):
        attrs = {_CSV_ATTRS.get(k, k): v for k, v in rec.items() if v}
        if not _keep(service, rec.get("Product Family", ""), attrs):
            continue
        sku = rec["SKU"]
        price = seen[sku][1] if sku in seen else None
        if rec["TermType"] == "OnDemand":
            where = f"{path}:{number}"
            if rec["Unit"] != "Hrs" or rec["Currency"] != "USD":
                raise DataError(
                    f"expected an hourly USD price, got {rec['Unit']} {rec['Currency']}", where=where
                )
            price = parse_price(rec["PricePerUnit"], where)
        seen[sku] = (rec["Instance Type"], price, attrs)
    for sku, (itype, price, attrs) in seen.items():
        yield sku, itype, price, attrs


def offer_prices(inp: Input, problems: Problems) -> dict[str, tuple[float | None, dict[str, str]]]:
    """instance type -> (on-demand price or None when no OnDemand term is published, attributes)."""
    parse = _offer_csv if inp.format == "aws-offer-csv" else _offer_json
    out: dict[str, tuple[float | None, dict[str, str]]] = {}
    for sku, itype, price, attrs in parse(inp.path, inp.service):
        if not itype:
            problems.add(f"{inp.path}: sku {sku}", "product has no instance type")
            continue
        if itype in out and out[itype][0] != price:
            problems.add(
                f"{inp.path}: {itype}",
                f"two SKUs survive the filters with different prices ({out[itype][0]} and {price}); refusing to pick one",
            )
            continue
        out[itype] = (price, attrs)
    return out


def instance_specs(path: Path) -> dict[str, dict[str, Any]]:
    data = expect(read_json(path), dict, str(path), "DescribeInstanceTypes response")
    items = expect(data.get("InstanceTypes"), list, str(path), "InstanceTypes")
    return {it["InstanceType"]: it for it in items}


def spot_prices(path: Path) -> dict[str, float]:
    """Minimum Linux/UNIX spot price per instance type over the AZs in the history (spot is per AZ)."""
    data = expect(read_json(path), dict, str(path), "DescribeSpotPriceHistory response")
    out: dict[str, float] = {}
    for i, rec in enumerate(expect(data.get("SpotPriceHistory"), list, str(path), "SpotPriceHistory")):
        if rec.get("ProductDescription") != "Linux/UNIX":
            continue
        price = parse_price(rec.get("SpotPrice"), f"{path}: SpotPriceHistory[{i}]")
        itype = rec["InstanceType"]
        out[itype] = min(price, out.get(itype, price))
    return out


def _gpu(
    inp: Input, itype: str, spec: dict[str, Any], overlays: Overlays, problems: Problems
) -> dict[str, Any]:
    info = spec.get("GpuInfo")
    if not info:
        return {}
    where = f"{inp.spec_from or inp.path}: {itype}"
    gpus = info.get("Gpus") or []
    if len(gpus) != 1:
        problems.add(where, f"expected one GPU kind, found {len(gpus)}")
        return {}
    g = gpus[0]
    api_count = float(g.get("Count", 0))
    partition = g.get("GpuPartitionSize")
    fractional = api_count == 0 and partition is not None
    count = float(partition) if fractional else api_count
    model = overlays.gpu_by_api_name(g.get("Name", ""))
    fix = overlays.instance_gpu("aws", itype.removeprefix("ml."))
    if fix is not None:
        model = overlays.gpu(fix.gpu_model)
        if fix.gpu_count is not None and fix.gpu_count != count:
            problems.add(where, f"spec says {count:g} GPUs, overlay instance_gpus.csv says {fix.gpu_count:g}")
        if fix.fractional != fractional:
            problems.add(where, "overlay and spec disagree on whether the GPU is fractional")
    if model is None:
        problems.add(where, f"GPU name {g.get('Name')!r} is not in overlays/gpus.csv")
        return {}
    if count <= 0:
        problems.add(where, "GPU instance with a GPU count of 0 and no partition size")
        return {}
    mib = g.get("MemoryInfo", {}).get("SizeInMiB")
    scale = count if fractional else 1.0
    return {
        "gpu_vendor": model.vendor,
        "gpu_model": model.model,
        "gpu_count": count,
        "gpu_fractional": fractional,
        "gpu_memory_gib_each": round(mib / 1024, 2) if mib else None,
        "gpu_memory_nominal_gb_each": round(model.nominal_memory_gb * scale, 3),
    }


def rows(inp: Input, spot: Input | None, overlays: Overlays, problems: Problems) -> list[InstanceRow]:
    if inp.spec_from is None:
        raise DataError("an AWS offer input needs its DescribeInstanceTypes companion", where=str(inp.path))
    specs = instance_specs(inp.spec_from)
    spots = spot_prices(spot.path) if spot is not None else {}
    out = []
    for itype, (price, attrs) in sorted(offer_prices(inp, problems).items()):
        twin = itype.removeprefix("ml.") if inp.service == "sagemaker" else itype
        spec = specs.get(twin)
        if spec is None:
            problems.add(
                f"{inp.path}: {itype}", f"no DescribeInstanceTypes entry for {twin} in {inp.spec_from}"
            )
            continue
        vcpus = float(spec["VCpuInfo"]["DefaultVCpus"])
        memory = spec["MemoryInfo"]["SizeInMiB"] / 1024
        if "vcpu" in attrs and float(attrs["vcpu"]) != vcpus:
            problems.add(f"{inp.path}: {itype}", f"offer says {attrs['vcpu']} vCPUs, spec says {vcpus:g}")
        archs = spec.get("ProcessorInfo", {}).get("SupportedArchitectures", [])
        notes = []
        if inp.service == "sagemaker":
            notes.append(f"spec: EC2 twin {twin}")
        out.append(
            InstanceRow(
                cloud="aws",
                service=inp.service,
                region=inp.region,
                instance_type=itype,
                arch="arm64" if "arm64" in archs else "x86_64",
                vcpus=vcpus,
                memory_gib=round(memory, 3),
                burstable=bool(spec.get("BurstablePerformanceSupported")) or overlays.burstable("aws", twin),
                price_on_demand=price,
                price_spot=spots.get(itype) if inp.service == "ec2" else None,
                source=inp.source,
                fetched_at=inp.fetched_at,
                notes="; ".join(notes),
                **_gpu(inp, itype, spec, overlays, problems),
            )
        )
    return out
