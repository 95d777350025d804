"""SkyPilot's generated catalogs (skypilot-org/skypilot-catalog, Apache-2.0): every instance type in every region
and zone of a cloud, with on-demand and per-zone spot prices, as ``catalogs/v7/<cloud>/vms.csv``.

Columns: InstanceType, AcceleratorName, AcceleratorCount, vCPUs, MemoryGiB, GpuInfo, Price, SpotPrice, Region,
AvailabilityZone. SkyPilot fetches them from the providers' own APIs, so a row is as good as a price file (high
confidence), but the file has gaps a picker must not paper over:
- no architecture column: Graviton/Axion machines are told by the providers' naming rules (see ``arch``);
- GCP prices N1 hosts and their attachable GPUs as separate rows (an empty InstanceType is a GPU row): a host
  alone would look several times cheaper than the machine a user gets (skypilot-catalog #31), so hosts are
  composed with their GPUs per ``overlays/gcp_attachable.csv`` and the GPU rows never stand on their own;
- a spot price above on-demand (seen in some zones) is not a price anyone pays: dropped, with a note.
"""

from __future__ import annotations

import ast
import csv
from collections.abc import Iterator
from typing import Any

from imagesmith.errors import DataError
from imagesmith.picker.model import InstanceRow
from imagesmith.picker.overlays import Overlays
from imagesmith.picker.providers.common import Input, Problems

COLUMNS = (
    "InstanceType",
    "AcceleratorName",
    "AcceleratorCount",
    "vCPUs",
    "MemoryGiB",
    "GpuInfo",
    "Price",
    "SpotPrice",
    "Region",
    "AvailabilityZone",
)
OPTIONAL = ("AvailabilityZone",)
SERVICE = {"aws": "ec2", "gcp": "compute-engine", "azure": "azure-vm"}


def records(inp: Input) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, record) of the file; a missing column is an error naming the file."""
    for path in inp.paths:
        try:
            fh = path.open(newline="")
        except FileNotFoundError:
            raise DataError("file not found", where=str(path)) from None
        with fh:
            reader = csv.DictReader(fh)
            # Azure's catalog prices regions, not zones: it has a Generation column instead of AvailabilityZone.
            missing = [c for c in COLUMNS if c not in (reader.fieldnames or ()) and c not in OPTIONAL]
            if missing:
                raise DataError(
                    f"not a SkyPilot vms.csv: no column(s) {', '.join(missing)}", where=f"{path}:1"
                )
            for rec in reader:
                yield reader.line_num, rec


def _float(text: str, where: str, what: str) -> float | None:
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise DataError(f"{what} {text!r} is not a number", where=where) from None


def arch(cloud: str, instance_type: str, overlays: Overlays) -> str:
    """The CPU architecture the name implies: the overlay first (a1, t2a, c4a), then AWS's naming rule, where a
    "g" among the letters after the generation digit means AWS Graviton (m7g, c7gn, im4gn, x2gd; "Instance type
    naming conventions", Amazon EC2 User Guide)."""
    known = overlays.arch(cloud, instance_type)
    if known is not None:
        return known
    if cloud == "aws":
        dot = instance_type.find(".")  # m7g.4xlarge: the family is what precedes the size
        family = instance_type[:dot] if dot >= 0 else instance_type
        i = 0
        while i < len(family) and not family[i].isdigit():
            i += 1
        while i < len(family) and family[i].isdigit():
            i += 1
        if i > 1 and "g" in family[i:] and family[:i].isalnum():
            return "arm64"
    return "x86_64"


def source_error(why: str) -> bool:
    """An overlay row written against a SkyPilot catalog's own figure ("SkyPilot's fork catalog says 12")."""
    return "SkyPilot" in why and "says" in why


def _gpu_info(text: str, where: str, problems: Problems) -> dict[str, Any] | None:
    """SkyPilot writes the provider's GpuInfo as a Python literal (single quotes), never code: literal_eval."""
    if not text or text[0] != "{":
        return None
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        problems.add(where, "GpuInfo is not a literal")
        return None
    return value if isinstance(value, dict) else None


def _gpu(
    cloud: str, itype: str, rec: dict[str, str], where: str, overlays: Overlays, problems: Problems
) -> dict[str, Any]:
    name = rec["AcceleratorName"]
    if not name:
        return {}
    count = _float(rec["AcceleratorCount"], where, "AcceleratorCount") or 0.0
    model = overlays.gpu_by_api_name(name)
    fix = overlays.instance_gpu(cloud, itype)
    fractional = False
    if fix is not None:
        model = overlays.gpu(fix.gpu_model)
        fractional = fix.fractional
        if fix.gpu_count is not None and fix.gpu_count != count:
            if source_error(fix.why):
                # The overlay row names this catalog's figure as wrong (ND96isr_H100_v5: 12 for 8): it wins.
                count = fix.gpu_count
            else:
                problems.add(
                    where, f"catalog says {count:g} GPUs, overlay instance_gpus.csv says {fix.gpu_count:g}"
                )
    if model is None:
        problems.add(where, f"GPU name {name!r} is not in overlays/gpus.csv")
        return {}
    if count <= 0:
        problems.add(where, f"{name} with a GPU count of {count:g}")
        return {}
    mib = None
    info = _gpu_info(rec["GpuInfo"], where, problems)
    if info is not None:
        gpus = info.get("Gpus") or []
        if len(gpus) == 1 and isinstance(gpus[0], dict):
            mib = gpus[0].get("MemoryInfo", {}).get("SizeInMiB")
    scale = count if fractional else 1.0
    return {
        "gpu_vendor": model.vendor,
        "gpu_model": model.model,
        "gpu_count": count,
        "gpu_fractional": fractional,
        "gpu_memory_gib_each": round(mib / 1024, 2) if isinstance(mib, int | float) and mib else None,
        "gpu_memory_nominal_gb_each": round(model.nominal_memory_gb * scale, 3),
    }


def _prices(rec: dict[str, str], where: str) -> tuple[float | None, float | None, str]:
    on_demand = _float(rec["Price"], where, "Price")
    spot = _float(rec["SpotPrice"], where, "SpotPrice")
    note = ""
    if spot is not None and on_demand is not None and spot > on_demand:
        note = f"source spot {spot:g} above on-demand {on_demand:g}: dropped"
        spot = None
    elif spot is not None and spot == on_demand:
        # SkyPilot's Azure fetcher writes the on-demand rate where a size has no spot meter: not a spot price.
        note = "source spot equal to on-demand (no spot meter): dropped"
        spot = None
    if spot is not None and on_demand is None:
        note = "source has a spot price but no on-demand price: row not priced"
        spot = None
    return on_demand, spot, note


def rows(inp: Input, overlays: Overlays, problems: Problems) -> list[InstanceRow]:
    cloud = inp.cloud
    if cloud not in SERVICE:
        raise DataError(f"no SkyPilot catalog parser for cloud {cloud!r}", where=str(inp.path))
    out: list[InstanceRow] = []
    # GCP: (zone, GPU model, count) -> (on-demand, spot, GPU fields) of the GPUs alone, to add to their hosts.
    gpus: dict[tuple[str, str, float], tuple[float | None, float | None, dict[str, Any]]] = {}
    hosts: list[InstanceRow] = []
    for line, rec in records(inp):
        where = f"{inp.path}:{line}"
        itype = rec["InstanceType"]
        region, zone = rec["Region"], rec.get("AvailabilityZone") or ""
        if inp.region not in ("", "*") and region != inp.region:
            continue
        on_demand, spot, note = _prices(rec, where)
        if not itype:
            if cloud == "gcp" and rec["AcceleratorName"]:
                gpu = _gpu(cloud, "", rec, where, overlays, problems)
                if gpu:
                    gpus[(zone, gpu["gpu_model"], gpu["gpu_count"])] = (on_demand, spot, gpu)
            continue
        vcpus = _float(rec["vCPUs"], where, "vCPUs")
        memory = _float(rec["MemoryGiB"], where, "MemoryGiB")
        if vcpus is None or memory is None or on_demand is None:
            # TPU VMs and placeholder rows have no host size; a type not offered on demand there has nothing
            # to rank by: neither is a machine the picker can offer.
            continue
        row = InstanceRow(
            cloud=cloud,
            service=SERVICE[cloud],
            region=region,
            zone=zone,
            instance_type=itype,
            arch=arch(cloud, itype, overlays),
            vcpus=vcpus,
            memory_gib=round(memory, 3),
            burstable=overlays.burstable(cloud, itype),
            price_on_demand=on_demand,
            price_spot=spot,
            source=inp.source,
            confidence=inp.confidence,
            fetched_at=inp.fetched_at,
            notes=note,
            **_gpu(cloud, itype, rec, where, overlays, problems),
        )
        if cloud == "gcp":
            hosts.append(row)  # priced with its GPUs below: a host alone is not what a user gets
        else:
            out.append(row)
    if cloud == "gcp":
        out += _gcp_machines(hosts, gpus, overlays)
    return out


def _add(
    host: InstanceRow, gpu: tuple[float | None, float | None, dict[str, Any]], name: str, note: str
) -> InstanceRow | None:
    od, spot, fields = gpu
    if od is None or host.price_on_demand is None:
        return None
    both_spot = host.price_spot is not None and spot is not None
    return InstanceRow(
        **{
            **{
                k: getattr(host, k)
                for k in ("cloud", "service", "region", "zone", "arch", "vcpus", "memory_gib")
            },
            **{k: getattr(host, k) for k in ("burstable", "source", "confidence", "fetched_at")},
            "instance_type": name,
            "price_on_demand": round(host.price_on_demand + od, 6),
            "price_spot": round((host.price_spot or 0.0) + (spot or 0.0), 6) if both_spot else None,
            "notes": "; ".join(n for n in (note, host.notes) if n),
            **fields,
        }
    )


def _gcp_machines(
    hosts: list[InstanceRow],
    gpus: dict[tuple[str, str, float], tuple[float | None, float | None, dict[str, Any]]],
    overlays: Overlays,
) -> list[InstanceRow]:
    """GCP's catalog prices a machine's vCPUs and memory in the machine-type row and its GPUs in separate rows
    per zone, for machines with built-in GPUs (a2, a3, g2: overlays/instance_gpus.csv names them) as for N1 hosts
    with attached ones (overlays/gcp_attachable.csv). A machine is offered where both rows exist; a built-in-GPU
    type whose GPU row is missing is left out, never priced as its host alone."""
    out: list[InstanceRow] = []
    for host in hosts:
        fix = overlays.instance_gpu("gcp", host.instance_type)
        if fix is not None and fix.gpu_count is not None:
            gpu = gpus.get((host.zone, fix.gpu_model, fix.gpu_count))
            if gpu is not None:
                row = _add(
                    host, gpu, host.instance_type, f"machine + {fix.gpu_count:g} x {fix.gpu_model} rows"
                )
                if row is not None:
                    out.append(row)
            continue
        out.append(host)
        for att in overlays.gcp_attachable:
            model = overlays.gpu_by_api_name(att.accelerator)
            if att.host != host.instance_type or model is None:
                continue
            gpu = gpus.get((host.zone, model.model, float(att.count)))
            if gpu is not None:
                name = f"{att.host}+{model.model}x{att.count}"
                row = _add(
                    host, gpu, name, f"host {att.host} + {att.count} x {model.model}, priced as both rows"
                )
                if row is not None:
                    out.append(row)
    return out
