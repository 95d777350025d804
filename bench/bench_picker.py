"""Picker speed: in-process query latency (full catalog and a synthetic 10x one) and `imagesmith pick` wall time.

Baselines, measured side by side: a naive pick that scans every row with a generic predicate list and sorts the
survivors (what a first version without the precomputed order would do), and `python -c pass` for the command.
Targets (issue 5): < 5 ms per query in-process, < 150 ms for the command.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import inproc, wall

from imagesmith.picker import catalog as catalog_mod
from imagesmith.picker.api import pick
from imagesmith.picker.model import InstanceRow

QUERIES: list[dict[str, Any]] = [
    {"gpus": "1", "gpu_memory": "24+"},
    {"cpus": "4+", "memory": "16+"},
    {"gpu": "H100", "gpus": "8", "spot": False},
    {"gpu": "H200", "cloud": "gcp"},  # nothing fits: scans every row
    {"gpus": "1", "min_cc": "8.0", "max_price": 2},
]


def synthetic(base: catalog_mod.Catalog, factor: int) -> catalog_mod.Catalog:
    """The catalog repeated `factor` times over made-up regions, prices jittered so the order is not trivial."""
    rows: list[InstanceRow] = []
    for i in range(factor):
        for r in base.rows:
            scale = 1 + 0.013 * ((i * 7 + len(r.instance_type)) % 11)
            rows.append(
                dataclasses.replace(
                    r,
                    region=f"{r.region}-syn{i}" if i else r.region,
                    price_on_demand=r.price_on_demand * scale if r.price_on_demand else None,
                    price_spot=r.price_spot * scale if r.price_spot else None,
                )
            )
    return catalog_mod.Catalog.from_rows(rows, catalog_date=base.catalog_date)


def _naive(cat: catalog_mod.Catalog, q: dict[str, Any]) -> InstanceRow | None:
    """Scan-filter-sort baseline over the same rows (GPU count/memory/model only: a lower bound on its cost)."""
    need_gpu = "gpus" in q or "gpu" in q
    fits = [
        r
        for r in cat.rows
        if r.price_on_demand is not None
        and r.service != "sagemaker"
        and (r.gpu_count >= 1 if need_gpu else r.gpu_count == 0)
        and (q.get("gpu") is None or r.gpu_model.startswith(q["gpu"]))
    ]
    fits.sort(key=lambda r: (r.price_on_demand, r.cloud, r.service, r.region, r.instance_type))
    return fits[0] if fits else None


def _queries(cat: catalog_mod.Catalog) -> float:
    return sum(inproc(lambda q=q: pick(catalog=cat, **q), runs=21) for q in QUERIES) / len(QUERIES)  # type: ignore[misc]


def _naive_queries(cat: catalog_mod.Catalog) -> float:
    return sum(inproc(lambda q=q: _naive(cat, q), runs=21) for q in QUERIES) / len(QUERIES)  # type: ignore[misc]


def run() -> list[dict[str, Any]]:
    full = catalog_mod.load()
    big = synthetic(full, 10)
    for cat in (full, big):  # warm the per-catalog order cache, as a long-lived process would
        pick(catalog=cat, gpus="1")
        pick(catalog=cat, gpus="1", spot=True)
    results = []
    for label, cat in (("full", full), ("synthetic 10x", big)):
        ours, base = _queries(cat), _naive_queries(cat)
        results.append(
            {
                "name": f"pick query, {label} catalog ({len(cat.rows)} rows)",
                "imagesmith_s": ours,
                "baseline": "naive scan+sort, fewer constraints",
                "baseline_s": base,
                "ratio": ours / base,
                "note": f"mean of per-query medians over {len(QUERIES)} queries; target < 5 ms",
            }
        )
    cmd = [sys.executable, "-m", "imagesmith", "pick", "--gpus", "1", "--gpu-memory", "24+"]
    ours = wall(cmd, runs=9)
    base = wall([sys.executable, "-c", "pass"], runs=9)
    results.append(
        {
            "name": "imagesmith pick (command wall time)",
            "imagesmith_s": ours,
            "baseline": "python -c pass",
            "baseline_s": base,
            "ratio": ours / base,
            "note": "median of 9 runs; target < 150 ms",
        }
    )
    return results


if __name__ == "__main__":
    for row in run():
        print(
            f"{row['name']:<50} {row['imagesmith_s'] * 1000:8.2f} ms   {row['baseline']}: "
            f"{row['baseline_s'] * 1000:8.2f} ms   x{row['ratio']:.2f}   {row['note']}"
        )
