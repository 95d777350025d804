"""Rebuild the provider-format inputs in this folder from the sourced reference rows (maintainer tool).

No provider API is reachable from where imagesmith is built, so the shipped catalog is generated from provider-format
files written here from ``shared/reference/instances/*.csv``. Each file keeps the provider's own layout (AWS Price List
offer JSON/CSV, EC2 DescribeInstanceTypes / DescribeSpotPriceHistory, GCP Cloud Billing Catalog SKUs and machine
types, Azure Retail Prices pages and Resource SKUs) so that ``imagesmith instances generate`` runs the same parsers
on them as on files fetched from the providers. What is synthetic is stated in ``manifest.json`` (SKU ids, the GCP
core/RAM split where the reference rows only fix their sum). Each row's original ``source`` text is kept verbatim in
``provenance.csv``.

Usage: python -m imagesmith.picker.sources.derive_from_reference REFERENCE_INSTANCES_DIR
"""

from __future__ import annotations

import csv
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
AWS_LOCATION = "US East (N. Virginia)"

# Per-GPU GCP prices, exactly as quoted in the reference rows' `source` text.
GCP_GPU_PRICE = {
    "nvidia-tesla-a100": 2.93391,
    "nvidia-a100-80gb": 3.92808,
    "nvidia-h100-80gb": 9.79655,
    "nvidia-l4": 0.560040239,
    "nvidia-tesla-t4": 0.35,
    "nvidia-tesla-v100": 2.48,
}
GCP_GPU_SPOT_PRICE = {"nvidia-tesla-a100": 1.4341}
GCP_MODEL_TO_ACCEL = {
    "A100": "nvidia-tesla-a100",
    "A100-80GB": "nvidia-a100-80gb",
    "H100": "nvidia-h100-80gb",
    "L4": "nvidia-l4",
    "T4": "nvidia-tesla-t4",
    "V100": "nvidia-tesla-v100",
}
GCP_SKU_STEM = {
    "n1": "N1 Predefined Instance",
    "a2": "A2 Instance",
    "a3": "A3 Instance",
    "g2": "G2 Instance",
}
GCP_GPU_STEM = {
    "nvidia-tesla-t4": "Nvidia Tesla T4 GPU",
    "nvidia-tesla-v100": "Nvidia Tesla V100 GPU",
    "nvidia-tesla-a100": "Nvidia Tesla A100 GPU",
    "nvidia-a100-80gb": "Nvidia A100 80GB GPU",
    "nvidia-h100-80gb": "Nvidia H100 80GB GPU",
    "nvidia-l4": "Nvidia L4 GPU",
}
# AWS DescribeInstanceTypes GPU names as the API reports them (the overlay fixes the wrong ones).
AWS_API_GPU_NAME = {
    "V100-32GB": "V100",
    "A100-80GB": "A100",
    "T4G": "T4g",
}
AWS_API_GPU_MIB = {
    "V100": 16384,
    "V100-32GB": 32768,
    "A100": 40960,
    "A100-80GB": 81920,
    "H100": 81920,
    "H200": 144384,
    "B200": 183296,
    "T4": 16384,
    "T4G": 16384,
    "A10G": 22888,
    "L4": 22888,
    "L40S": 45776,
}
AZURE_FAMILY = {
    "T4_v3": "standardNCASv3_T4Family",
    "A100_v4": "StandardNCADSA100v4Family",
    "ND96asr_v4": "standardNDASv4_A100Family",
    "ND96amsr_A100_v4": "standardNDAMSv4_A100Family",
    "NC40ads_H100_v5": "StandardNCadsH100v5Family",
    "NC80adis_H100_v5": "StandardNCadsH100v5Family",
    "ND96isr_H100_v5": "standardNDSH100v5Family",
    "s_v3": "standardNCSv3Family",
    "A10_v5": "StandardNVADSA10v5Family",
}


def _sku_id(*parts: str, n: int = 16) -> str:
    digest = hashlib.sha256("|".join(parts).encode()).hexdigest().upper()
    return "".join(c for c in digest if c.isalnum())[:n]


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, sort_keys=False) + "\n")


def _nanos(price: float) -> dict[str, Any]:
    units = int(price)
    return {"currencyCode": "USD", "units": str(units), "nanos": round((price - units) * 1e9)}


def aws(ref: Path) -> None:
    rows = _read(ref / "aws_us_east_1.csv")
    products: dict[str, Any] = {}
    on_demand: dict[str, Any] = {}
    types: list[dict[str, Any]] = []
    spot: list[dict[str, Any]] = []
    for r in rows:
        itype = r["instance_type"]
        sku = _sku_id("ec2", itype)
        metal = "metal" in itype
        attrs = {
            "servicecode": "AmazonEC2",
            "location": AWS_LOCATION,
            "locationType": "AWS Region",
            "regionCode": "us-east-1",
            "instanceType": itype,
            "vcpu": r["vcpus"],
            "memory": f"{r['memory_gib']} GiB",
            "operatingSystem": "Linux",
            "tenancy": "Shared",
            "preInstalledSw": "NA",
            "licenseModel": "No License required",
            "capacitystatus": "Used",
            "marketoption": "OnDemand",
            "usagetype": f"BoxUsage:{itype}",
            "operation": "RunInstances",
        }
        if r["gpu_model"]:
            attrs["gpu"] = "0" if "." in r["gpu_count"] and float(r["gpu_count"]) < 1 else r["gpu_count"]
        family = "Compute Instance (bare metal)" if metal else "Compute Instance"
        products[sku] = {"sku": sku, "productFamily": family, "attributes": attrs}
        if r["price_on_demand_usd_hr"]:
            term = f"{sku}.JRTCKXETXF"
            rate = f"{term}.6YS6EN2CT7"
            price = r["price_on_demand_usd_hr"]
            on_demand[sku] = {
                term: {
                    "sku": sku,
                    "offerTermCode": "JRTCKXETXF",
                    "effectiveDate": "2026-01-01T00:00:00Z",
                    "priceDimensions": {
                        rate: {
                            "rateCode": rate,
                            "description": f"${price} per On Demand Linux {itype} Instance Hour",
                            "unit": "Hrs",
                            "beginRange": "0",
                            "endRange": "Inf",
                            "appliesTo": [],
                            "pricePerUnit": {"USD": f"{float(price):.10f}"},
                        }
                    },
                    "termAttributes": {},
                }
            }
        it: dict[str, Any] = {
            "InstanceType": itype,
            "BareMetal": metal,
            "BurstablePerformanceSupported": itype.startswith("t3."),
            "ProcessorInfo": {"SupportedArchitectures": [r["arch"]]},
            "VCpuInfo": {"DefaultVCpus": int(r["vcpus"])},
            "MemoryInfo": {"SizeInMiB": round(float(r["memory_gib"]) * 1024)},
        }
        if r["gpu_model"]:
            model = r["gpu_model"]
            count = float(r["gpu_count"])
            gpu: dict[str, Any] = {
                "Name": "NVIDIA" if itype.startswith("p5en.") else AWS_API_GPU_NAME.get(model, model),
                "Manufacturer": "NVIDIA",
            }
            if count < 1:
                mib = round(AWS_API_GPU_MIB[model] * count)
                gpu |= {
                    "Count": 0,
                    "LogicalGpuCount": 1,
                    "GpuPartitionSize": count,
                    "MemoryInfo": {"SizeInMiB": mib},
                }
                it["GpuInfo"] = {"Gpus": [gpu], "TotalGpuMemoryInMiB": mib}
            else:
                mib = AWS_API_GPU_MIB[model]
                gpu |= {"Count": int(count), "MemoryInfo": {"SizeInMiB": mib}}
                it["GpuInfo"] = {"Gpus": [gpu], "TotalGpuMemoryInMiB": mib * int(count)}
        types.append(it)
        if r["price_spot_usd_hr"]:
            spot.append(
                {
                    "InstanceType": itype,
                    "ProductDescription": "Linux/UNIX",
                    "SpotPrice": f"{float(r['price_spot_usd_hr']):.6f}",
                }
            )
    _write_json(
        HERE / "aws" / "ec2-us-east-1.offer.json",
        {
            "formatVersion": "v1.0",
            "disclaimer": "Derived from shared/reference/instances/aws_us_east_1.csv; see manifest.json.",
            "offerCode": "AmazonEC2",
            "version": "20260119132324",
            "publicationDate": "2026-01-19T13:23:24Z",
            "products": products,
            "terms": {"OnDemand": on_demand},
        },
    )
    _write_json(HERE / "aws" / "ec2-us-east-1.instance-types.json", {"InstanceTypes": types})
    _write_json(HERE / "aws" / "ec2-us-east-1.spot-prices.json", {"SpotPriceHistory": spot})

    sm = _read(ref / "aws_sagemaker_us_east_1.csv")
    header = [
        "SKU", "OfferTermCode", "RateCode", "TermType", "PriceDescription", "EffectiveDate", "StartingRange",
        "EndingRange", "Unit", "PricePerUnit", "Currency", "Product Family", "serviceCode", "Location",
        "Location Type", "Instance Type", "vCPU", "Memory", "GPU", "Component", "usageType", "operation",
        "Region Code",
    ]  # fmt: skip
    path = HERE / "aws" / "sagemaker-us-east-1.offer.csv"
    with path.open("w", newline="") as fh:
        w = csv.writer(fh, quoting=csv.QUOTE_ALL, lineterminator="\n")
        w.writerow(["FormatVersion", "v1.0"])
        w.writerow(
            [
                "Disclaimer",
                "Derived from shared/reference/instances/aws_sagemaker_us_east_1.csv; see manifest.json.",
            ]
        )
        w.writerow(["Publication Date", "2026-08-01T00:00:00Z"])
        w.writerow(["Version", "20260801000000"])
        w.writerow(["OfferCode", "AmazonSageMaker"])
        w.writerow(header)
        for r in sm:
            itype = r["instance_type"]
            sku = _sku_id("sagemaker", itype)
            price = r["price_on_demand_usd_hr"]
            w.writerow([
                sku, "JRTCKXETXF", f"{sku}.JRTCKXETXF.6YS6EN2CT7", "OnDemand",
                f"${price} per Training {itype} instance hour", "2026-08-01", "0", "Inf", "Hrs",
                f"{float(price):.10f}", "USD", "ML Instance", "AmazonSageMaker", AWS_LOCATION, "AWS Region", itype,
                r["vcpus"], f"{r['memory_gib']} GiB", r["gpu_count"], "Training", f"USE1-Train:{itype}",
                "RunInstance", "us-east-1",
            ])  # fmt: skip


def _solve_core_ram(
    hosts: list[tuple[float, float, float]], fallback_ram: float | None
) -> tuple[float, float]:
    """Least-squares core/RAM rates from (vcpus, gib, host price); one ram/vCPU ratio cannot be split."""
    ratios = {round(g / c, 6) for c, g, _ in hosts}
    if len(ratios) >= 2:
        scc = sum(c * c for c, _, _ in hosts)
        sgg = sum(g * g for _, g, _ in hosts)
        scg = sum(c * g for c, g, _ in hosts)
        scp = sum(c * p for c, _, p in hosts)
        sgp = sum(g * p for _, g, p in hosts)
        det = scc * sgg - scg * scg
        return (scp * sgg - sgp * scg) / det, (scc * sgp - scg * scp) / det
    if fallback_ram is None:
        raise SystemExit("cannot split core/RAM with one ratio and no fallback")
    c, g, p = hosts[0]
    return (p - g * fallback_ram) / c, fallback_ram


def gcp(ref: Path) -> None:
    rows = _read(ref / "gcp_us_central1.csv")
    machine_types: list[dict[str, Any]] = []
    hosts: dict[str, list[tuple[float, float, float]]] = {}
    spot_hosts: dict[str, list[tuple[float, float, float]]] = {}
    for r in rows:
        name = r["instance_type"]
        host = name.split("+")[0]
        fam = host.split("-")[0]
        accel = GCP_MODEL_TO_ACCEL[r["gpu_model"]]
        n = float(r["gpu_count"])
        c, g = float(r["vcpus"]), float(r["memory_gib"])
        hosts.setdefault(fam, []).append(
            (c, g, float(r["price_on_demand_usd_hr"]) - n * GCP_GPU_PRICE[accel])
        )
        if r["price_spot_usd_hr"]:
            spot_hosts.setdefault(fam, []).append(
                (c, g, float(r["price_spot_usd_hr"]) - n * GCP_GPU_SPOT_PRICE[accel])
            )
        if any(m["name"] == host for m in machine_types):
            continue
        mt: dict[str, Any] = {
            "kind": "compute#machineType",
            "name": host,
            "zone": "us-central1-a",
            "guestCpus": int(r["vcpus"]),
            "memoryMb": round(g * 1024),
            "isSharedCpu": False,
        }
        if "+" not in name:
            mt["accelerators"] = [{"guestAcceleratorType": accel, "guestAcceleratorCount": int(n)}]
        ssd = {
            "a2-ultragpu-1g": 1,
            "a2-ultragpu-2g": 2,
            "a2-ultragpu-4g": 4,
            "a2-ultragpu-8g": 8,
            "a3-highgpu-8g": 16,
        }
        if host in ssd:
            mt["bundledLocalSsds"] = {"defaultInterface": "NVME", "partitionCount": ssd[host]}
        machine_types.append(mt)
    rates: dict[str, tuple[float, float]] = {}
    for fam in (
        "n1",
        "a2",
        "a3",
        "g2",
    ):  # n1 first: its RAM rate is the fallback split for single-ratio families
        rates[fam] = _solve_core_ram(hosts[fam], rates.get("n1", (0.0, 0.0))[1])
    spot_rates = {fam: _solve_core_ram(h, None) for fam, h in spot_hosts.items()}

    skus: list[dict[str, Any]] = []

    def sku(description: str, group: str, usage: str, unit: str, price: float) -> None:
        sid = "-".join(_sku_id("gcp", description, usage)[i : i + 4] for i in (0, 4, 8))
        skus.append({
            "name": f"services/6F81-5844-456A/skus/{sid}",
            "skuId": sid,
            "description": description,
            "category": {"serviceDisplayName": "Compute Engine", "resourceFamily": "Compute",
                         "resourceGroup": group, "usageType": usage},
            "serviceRegions": ["us-central1"],
            "pricingInfo": [{"pricingExpression": {"usageUnit": unit, "displayQuantity": 1, "tieredRates": [
                {"startUsageAmount": 0, "unitPrice": _nanos(price)}]}}],
            "serviceProviderName": "Google",
        })  # fmt: skip

    for fam, (core, ram) in rates.items():
        stem = GCP_SKU_STEM[fam]
        sku(f"{stem} Core running in Americas", "CPU", "OnDemand", "h", core)
        sku(f"{stem} Ram running in Americas", "RAM", "OnDemand", "GiBy.h", ram)
    for fam, (core, ram) in spot_rates.items():
        stem = GCP_SKU_STEM[fam]
        sku(f"Spot Preemptible {stem} Core running in Americas", "CPU", "Preemptible", "h", core)
        sku(f"Spot Preemptible {stem} Ram running in Americas", "RAM", "Preemptible", "GiBy.h", ram)
    for accel, price in GCP_GPU_PRICE.items():
        sku(f"{GCP_GPU_STEM[accel]} running in Americas", "GPU", "OnDemand", "h", price)
    for accel, price in GCP_GPU_SPOT_PRICE.items():
        sku(f"Spot Preemptible {GCP_GPU_STEM[accel]} running in Americas", "GPU", "Preemptible", "h", price)
    _write_json(HERE / "gcp" / "skus.json", {"skus": skus, "nextPageToken": ""})
    _write_json(
        HERE / "gcp" / "machine-types-us-central1.json",
        {"kind": "compute#machineTypeList", "items": machine_types},
    )


def azure(ref: Path) -> None:
    rows = _read(ref / "azure_eastus.csv")
    items: list[dict[str, Any]] = []
    skus: list[dict[str, Any]] = []
    for r in rows:
        arm = r["instance_type"]
        short = arm.removeprefix("Standard_").replace("_", " ")
        family = next(f for k, f in AZURE_FAMILY.items() if arm.endswith(k))
        base = {
            "currencyCode": "USD",
            "tierMinimumUnits": 0.0,
            "armRegionName": "eastus",
            "location": "US East",
            "effectiveStartDate": "2025-01-01T00:00:00Z",
            "productName": f"Virtual Machines {family.removeprefix('standard').removeprefix('Standard')} Series",
            "serviceName": "Virtual Machines",
            "serviceId": "DZH313Z7MMC8",
            "serviceFamily": "Compute",
            "unitOfMeasure": "1 Hour",
            "type": "Consumption",
            "isPrimaryMeterRegion": True,
            "armSkuName": arm,
        }
        od = float(r["price_on_demand_usd_hr"])
        items.append(base | {"retailPrice": od, "unitPrice": od, "meterName": short, "skuName": short,
                             "meterId": _sku_id("az-meter", arm), "skuId": _sku_id("az-sku", arm)})  # fmt: skip
        spot_text = r["price_spot_usd_hr"]
        # The fork catalog's H100 rows carry SpotPrice == Price, a sentinel; keep it so the parser must drop it.
        spot = float(spot_text) if spot_text else (od if "treated as unknown" in r["notes"] else None)
        if spot is not None:
            items.append(base | {"retailPrice": spot, "unitPrice": spot, "meterName": f"{short} Spot",
                                 "skuName": f"{short} Spot", "meterId": _sku_id("az-meter-spot", arm),
                                 "skuId": _sku_id("az-sku-spot", arm)})  # fmt: skip
        caps = [
            {"name": "vCPUs", "value": r["vcpus"]},
            {"name": "MemoryGB", "value": r["memory_gib"]},
            {"name": "CpuArchitectureType", "value": "x64" if r["arch"] == "x86_64" else "Arm64"},
        ]
        if r["gpu_model"]:
            caps.append({"name": "GPUs", "value": str(int(float(r["gpu_count"])))})
        skus.append({"resourceType": "virtualMachines", "name": arm, "tier": "Standard", "size": short,
                     "family": family, "locations": ["eastus"], "capabilities": caps})  # fmt: skip
    half = (len(items) + 1) // 2
    base_url = "https://prices.azure.com/api/retail/prices?$filter=serviceName eq 'Virtual Machines' and armRegionName eq 'eastus'"
    _write_json(
        HERE / "azure" / "retail-prices-eastus.page1.json",
        {"BillingCurrency": "USD", "CustomerEntityId": "Default", "CustomerEntityType": "Retail",
         "Items": items[:half], "NextPageLink": f"{base_url}&$skip={half}", "Count": half},
    )  # fmt: skip
    _write_json(
        HERE / "azure" / "retail-prices-eastus.page2.json",
        {"BillingCurrency": "USD", "CustomerEntityId": "Default", "CustomerEntityType": "Retail",
         "Items": items[half:], "NextPageLink": None, "Count": len(items) - half},
    )  # fmt: skip
    _write_json(HERE / "azure" / "resource-skus-eastus.json", skus)


def provenance(ref: Path) -> None:
    files = [
        ("aws_us_east_1.csv", "aws", "ec2"),
        ("aws_sagemaker_us_east_1.csv", "aws", "sagemaker"),
        ("gcp_us_central1.csv", "gcp", "compute-engine"),
        ("azure_eastus.csv", "azure", "azure-vm"),
    ]
    with (HERE / "provenance.csv").open("w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["cloud", "service", "region", "instance_type", "source", "notes"])
        for name, cloud, service in files:
            for r in _read(ref / name):
                w.writerow([cloud, service, r["region"], r["instance_type"], r["source"], r["notes"]])


def main(argv: list[str]) -> None:
    ref = Path(argv[0]) if argv else Path("/work/shared/reference/instances")
    aws(ref)
    gcp(ref)
    azure(ref)
    provenance(ref)


if __name__ == "__main__":
    main(sys.argv[1:])
