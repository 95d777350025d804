"""`imagesmith instances generate`: provider files + overlays -> validated catalog, or nothing at all.

The gates run on the whole candidate before anything is written; on any failure the previous catalog stays in
place untouched (SkyPilot, gpuhunt and Karpenter all keep the last good data when a refresh goes wrong).
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import hashlib
import io
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from imagesmith.contract.record import replace
from imagesmith.errors import DataError
from imagesmith.picker import catalog as catalog_mod
from imagesmith.picker import gates, overlays
from imagesmith.picker.model import COLUMNS, CONFIDENCES, InstanceRow, row_to_csv
from imagesmith.picker.providers import aws, azure, gcp, skypilot
from imagesmith.picker.providers.common import Input, Problems, expect, read_json

SOURCES_DIR = Path(__file__).parent / "sources"
MANIFEST = "manifest.json"
FORMATS = {
    "aws-offer-json",
    "aws-offer-csv",
    "aws-instance-types",
    "aws-spot-history",
    "gcp-skus",
    "gcp-machine-types",
    "azure-retail-pages",
    "azure-resource-skus",
    "skypilot-vms-csv",
}

# model -> (compute capability, "matrix" | "overlay")
CcLookup = Callable[[overlays.GpuModel], tuple[str, str]]


@dataclasses.dataclass(frozen=True, kw_only=True)
class Outcome:
    rows: tuple[InstanceRow, ...]
    meta: dict[str, Any]
    written: bool
    directory: Path


def matrix_cc_lookup(problems: Problems) -> CcLookup:
    """Compute capability from the matrix's GPU data; the overlay's figure only where the matrix lacks the GPU."""
    from imagesmith.matrix import knowledge

    kb = knowledge.load()

    def lookup(model: overlays.GpuModel) -> tuple[str, str]:
        for name in model.matrix_names:
            gpu = kb.gpu_or_none(name)
            if gpu is not None:
                cc = str(gpu.capability)
                if model.cc_fallback and model.cc_fallback != cc:
                    problems.add(
                        f"overlays/gpus.csv: {model.model}",
                        f"overlay compute capability {model.cc_fallback} disagrees with the matrix ({name}: {cc})",
                    )
                return cc, "matrix"
        if not model.cc_fallback:
            problems.add(f"overlays/gpus.csv: {model.model}", "no matrix GPU and no cc_fallback")
        return model.cc_fallback, "overlay"

    return lookup


def read_manifest(sources: Path) -> list[Input]:
    path = sources / MANIFEST
    data = expect(read_json(path), dict, str(path), "manifest")
    inputs = []
    for i, item in enumerate(expect(data.get("inputs"), list, str(path), "inputs")):
        where = f"{path}: inputs[{i}]"
        try:
            fmt = item["format"]
            if fmt not in FORMATS:
                raise DataError(f"unknown format {fmt!r} (known: {', '.join(sorted(FORMATS))})", where=where)
            pages = item.get("pages") or [item["path"]]
            inputs.append(
                Input(
                    cloud=item["cloud"],
                    service=item["service"],
                    region=item["region"],
                    format=fmt,
                    paths=tuple(sources / p for p in pages),
                    fetched_at=str(item.get("fetched_at", "")),
                    source=item["source"],
                    confidence=_confidence(item.get("confidence", "medium"), where),
                    spec_from=sources / item["spec_from"] if item.get("spec_from") else None,
                )
            )
        except KeyError as exc:
            raise DataError(f"input lacks {exc.args[0]!r}", where=where) from None
    return inputs


Provenance = dict[tuple[str, str, str, str], tuple[str, str, str]]


def _confidence(value: object, where: str) -> str:
    if value not in CONFIDENCES:
        raise DataError(f"confidence {value!r} is not one of {', '.join(CONFIDENCES)}", where=where)
    return str(value)


def read_provenance(sources: Path, name: str | None) -> Provenance:
    """Per-row source text, notes and (optionally) confidence, keyed by cloud, service, region, type."""
    if not name:
        return {}
    out = {}
    path = sources / name
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        for rec in reader:
            confidence = rec.get("confidence") or ""
            if confidence and confidence not in CONFIDENCES:
                raise DataError(
                    f"confidence {confidence!r} is not one of {', '.join(CONFIDENCES)}",
                    where=f"{path}:{reader.line_num}",
                )
            out[(rec["cloud"], rec["service"], rec["region"], rec["instance_type"])] = (
                rec["source"],
                rec["notes"],
                confidence,
            )
    return out


def _one(inputs: list[Input], fmt: str) -> Input | None:
    found = [i for i in inputs if i.format == fmt]
    return found[0] if found else None


def _rated(rows: list[InstanceRow], priced_by: Input) -> list[InstanceRow]:
    """A row is as trustworthy as the file that priced it (provenance.csv may lower single rows)."""
    return [replace(r, confidence=priced_by.confidence) for r in rows]


def build_rows(sources: Path, ov: overlays.Overlays, problems: Problems) -> list[InstanceRow]:
    inputs = read_manifest(sources)
    groups: dict[tuple[str, str, str], list[Input]] = {}
    for inp in inputs:
        groups.setdefault((inp.cloud, inp.service, inp.region), []).append(inp)
    rows: list[InstanceRow] = []
    for (cloud, service, region), group in groups.items():
        where = f"{sources / MANIFEST}: {cloud}/{service}/{region}"
        catalogs = [i for i in group if i.format == "skypilot-vms-csv"]
        for inp in catalogs:
            rows += skypilot.rows(inp, ov, problems)
        if len(catalogs) == len(group):
            continue
        if catalogs:
            raise DataError("a SkyPilot catalog input is its own group: give it region '*'", where=where)
        if cloud == "aws":
            offer = _one(group, "aws-offer-json") or _one(group, "aws-offer-csv")
            if offer is None:
                raise DataError("no AWS offer file", where=where)
            if offer.spec_from is None:
                specs = _one(group, "aws-instance-types")
                if specs is None:
                    raise DataError("no aws-instance-types input for the offer file", where=where)
                offer = dataclasses.replace(offer, spec_from=specs.path)
            rows += _rated(aws.rows(offer, _one(group, "aws-spot-history"), ov, problems), offer)
        elif cloud == "gcp":
            skus, types = _one(group, "gcp-skus"), _one(group, "gcp-machine-types")
            if skus is None or types is None:
                raise DataError("GCP needs both gcp-skus and gcp-machine-types inputs", where=where)
            rows += _rated(gcp.rows(skus, types, ov, problems), skus)
        elif cloud == "azure":
            pages, specs = _one(group, "azure-retail-pages"), _one(group, "azure-resource-skus")
            if pages is None or specs is None:
                raise DataError("Azure needs azure-retail-pages and azure-resource-skus inputs", where=where)
            rows += _rated(azure.rows(pages, specs, ov, problems), pages)
        else:
            raise DataError(f"unknown cloud {cloud!r}", where=where)
    return _one_source_each(rows)


def _one_source_each(rows: list[InstanceRow]) -> list[InstanceRow]:
    """One source per instance type and region: where two inputs price the same type in the same region (a
    region's price file and a multi-region catalog), the rows of the more confident one stay; at equal
    confidence, the input listed first in the manifest. Mixing them would rank one machine by two dates."""
    rank = {c: i for i, c in enumerate(CONFIDENCES)}
    best: dict[tuple[str, str, str, str], tuple[int, str]] = {}
    for row in rows:
        k = (row.cloud, row.service, row.region, row.instance_type)
        mine = (rank[row.confidence], row.source)
        if k not in best or mine[0] < best[k][0]:
            best[k] = mine
    return [r for r in rows if best[(r.cloud, r.service, r.region, r.instance_type)][1] == r.source]


def _join(
    rows: list[InstanceRow], ov: overlays.Overlays, cc_lookup: CcLookup, prov: Provenance
) -> list[InstanceRow]:
    out = []
    for row in rows:
        changes: dict[str, Any] = {}
        if row.gpu_model:
            model = ov.gpu(row.gpu_model)
            if model is not None:
                changes["compute_capability"], changes["cc_source"] = cc_lookup(model)
        found = prov.get((row.cloud, row.service, row.region, row.instance_type))
        if found is not None:
            text, notes, confidence = found
            changes["source"] = text
            changes["notes"] = "; ".join(n for n in (notes, row.notes) if n)
            if confidence:
                changes["confidence"] = confidence
        out.append(replace(row, **changes) if changes else row)
    return sorted(out, key=lambda r: r.key)


def render_csv(rows: list[InstanceRow] | tuple[InstanceRow, ...]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(row_to_csv(r) for r in rows)
    return buf.getvalue()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _previous_count(out_dir: Path) -> int | None:
    try:
        meta = json.loads((out_dir / catalog_mod.META_FILE).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    count = meta.get("row_count")
    return count if isinstance(count, int) else None


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        # mkstemp makes the file private (0600); a catalog is read by every user of the installation.
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def generate(
    *,
    sources: Path = SOURCES_DIR,
    out_dir: Path | None = None,
    overlay_dir: Path = overlays.OVERLAY_DIR,
    allow_shrink: bool = False,
    dry_run: bool = False,
    cc_lookup: CcLookup | None = None,
) -> Outcome:
    out_dir = out_dir if out_dir is not None else Path(catalog_mod.DATA_DIR)
    problems = Problems()
    ov = overlays.load(overlay_dir)
    manifest = read_json(sources / MANIFEST)
    rows = build_rows(sources, ov, problems)
    lookup = cc_lookup if cc_lookup is not None else matrix_cc_lookup(problems)
    rows = _join(rows, ov, lookup, read_provenance(sources, manifest.get("provenance")))
    gates.check(rows, ov, problems, previous_count=_previous_count(out_dir), allow_shrink=allow_shrink)
    if problems:
        first = "; ".join(problems.items[:3])
        more = f" (+{len(problems.items) - 3} more)" if len(problems.items) > 3 else ""
        raise DataError(
            f"{len(problems.items)} validation problem(s), catalog not written: {first}{more}",
            where=str(sources),
            hint=f"the previous catalog in {out_dir} is unchanged",
        )
    inputs = read_manifest(sources)
    dates = [i.fetched_at for i in inputs if i.fetched_at]
    csv_text = render_csv(rows)
    meta: dict[str, Any] = {
        "schema": catalog_mod.SCHEMA,
        "catalog_date": max(dates) if dates else "",
        "oldest_source_date": min(dates) if dates else "",
        "generated_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "row_count": len(rows),
        "catalog_sha256": hashlib.sha256(csv_text.encode()).hexdigest(),
        "about": manifest.get("about", ""),
        "sources": [
            {
                "cloud": i.cloud,
                "service": i.service,
                "region": i.region,
                "format": i.format,
                "files": [p.name for p in i.paths],
                "sha256": [_sha256(p) for p in i.paths],
                "fetched_at": i.fetched_at or "undated",
                "source": i.source,
            }
            for i in inputs
        ],
        "overlays": {p.name: _sha256(p) for p in sorted(overlay_dir.glob("*.csv"))},
    }
    if not dry_run:
        out_dir.mkdir(parents=True, exist_ok=True)
        # CSV first, then the metadata that vouches for it: a reader never sees new meta over an old CSV.
        _atomic_write(out_dir / catalog_mod.CATALOG_FILE, csv_text)
        _atomic_write(out_dir / catalog_mod.META_FILE, json.dumps(meta, indent=1) + "\n")
        catalog_mod.forget(out_dir)
    return Outcome(rows=tuple(rows), meta=meta, written=not dry_run, directory=out_dir)
