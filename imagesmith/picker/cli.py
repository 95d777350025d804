"""`imagesmith pick` and `imagesmith instances {generate,list,info}`: thin translators onto the picker core."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import click

from imagesmith.errors import NegativeAnswer

_CATALOG = click.option(
    "--catalog",
    "catalog_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Catalog directory (catalog.csv + catalog.meta.json); default: the shipped one or $IMAGESMITH_CATALOG_DIR.",
)


@click.command("pick")
@click.option("--cpus", help="vCPUs: 4 (exact), 4+ (at least), 4..16.")
@click.option("--memory", help="Host memory in GiB: 16, 16+, 16..64, or 4x (GiB per vCPU).")
@click.option(
    "--gpus",
    help="GPU count: 1, 1+, 2..8 (fractions like 0.25+ with --allow-fractional). Default 0 unless a GPU flag is given.",
)
@click.option("--gpu", help="GPU model(s), comma-separated; A100 also matches A100-80GB.")
@click.option("--gpu-memory", help="Memory per GPU: 24+, 40..80 (basis: --gpu-memory-basis).")
@click.option(
    "--gpu-memory-basis",
    type=click.Choice(["nominal", "reported"]),
    default="nominal",
    show_default=True,
    help="nominal = marketed GB (A10G 24); reported = what the provider API reports (A10G 22.35 GiB).",
)
@click.option("--min-cc", help="Minimum compute capability, e.g. 8.0.")
@click.option("--arch", help="x86_64 (default), arm64 or any.")
@click.option("--cloud", help="aws, gcp, azure (comma-separated).")
@click.option("--service", help="ec2, sagemaker, compute-engine, azure-vm (default: the VM services).")
@click.option("--region", help="Region(s), comma-separated.")
@click.option("--spot", is_flag=True, help="Rank by spot price (rows without one are rejected).")
@click.option("--max-price", help="Upper bound in USD per hour.")
@click.option("--allow-fractional", is_flag=True, help="Allow partitions of one GPU (g6f: 1/8 of an L4).")
@click.option("--no-burstable", is_flag=True, help="Exclude burstable instances (t3).")
@click.option(
    "--image", help="Only GPUs the image's framework build can run on (curated tag or torch==2.8.0+cu128)."
)
@click.option(
    "--top", type=int, default=5, show_default=True, help="How many alternatives and rejected rows to show."
)
@click.option("--json", "as_json", is_flag=True, help="Print the answer as JSON (schema 1).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["k8s", "karpenter", "sagemaker"]),
    help="Print a ready snippet instead.",
)
@_CATALOG
def pick(
    cpus: str | None,
    memory: str | None,
    gpus: str | None,
    gpu: str | None,
    gpu_memory: str | None,
    gpu_memory_basis: str,
    min_cc: str | None,
    arch: str | None,
    cloud: str | None,
    service: str | None,
    region: str | None,
    spot: bool,
    max_price: str | None,
    allow_fractional: bool,
    no_burstable: bool,
    image: str | None,
    top: int,
    as_json: bool,
    fmt: str | None,
    catalog_dir: Path | None,
) -> None:
    """Choose the cheapest instance that fits the workload (exit 1 when none does)."""
    from imagesmith.picker.api import pick as run_pick

    if fmt == "sagemaker" and service is None:
        service = "sagemaker"
    if fmt == "karpenter" and cloud is None and service is None:
        cloud = "aws"  # Karpenter provisions EC2: the format says where to look
    result = run_pick(
        cpus=cpus,
        memory=memory,
        gpus=gpus,
        gpu=gpu,
        gpu_memory=gpu_memory,
        gpu_memory_basis=gpu_memory_basis,
        min_cc=min_cc,
        arch=arch,
        cloud=cloud,
        service=service,
        region=region,
        spot=spot,
        max_price=max_price,
        allow_fractional=allow_fractional,
        no_burstable=no_burstable,
        image=image,
        top=top,
        catalog=catalog_dir,
    )
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=1))
    elif fmt is not None and result.choice is not None:
        from imagesmith.picker.formats import render

        click.echo(render(fmt, result))
    elif fmt is None:
        from imagesmith.picker.render import pick_text

        click.echo(pick_text(result))
    if result.choice is None:
        closest = ", ".join(
            f"{r.row.instance_type} ({'; '.join(str(f) for f in r.failed)})" for r in result.rejected[:3]
        )
        raise NegativeAnswer(
            f"no instance in the catalog of {result.catalog_date} fits",
            hint=f"closest: {closest}" if closest else "the scope (--cloud/--service/--region) holds no rows",
        )


@click.group("instances")
def instances() -> None:
    """Inspect and regenerate the instance catalog."""


@instances.command("generate")
@click.option(
    "--sources",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Directory with manifest.json and the provider files (default: the package's sources).",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where to write (default: the package catalog).",
)
@click.option(
    "--allow-shrink", is_flag=True, help="Accept a catalog with far fewer rows than the previous one."
)
@click.option("--dry-run", is_flag=True, help="Validate and report; write nothing.")
def generate_command(sources: Path | None, out_dir: Path | None, allow_shrink: bool, dry_run: bool) -> None:
    """Build the catalog from provider price files + overlays; on any failed gate the old catalog stays."""
    from imagesmith.picker import generate

    outcome = generate.generate(
        sources=sources if sources is not None else generate.SOURCES_DIR,
        out_dir=out_dir,
        allow_shrink=allow_shrink,
        dry_run=dry_run,
    )
    counts = Counter(f"{r.cloud}/{r.service}" for r in outcome.rows)
    verb = "would write" if dry_run else "wrote"
    click.echo(
        f"{verb} {len(outcome.rows)} rows ({', '.join(f'{k} {v}' for k, v in sorted(counts.items()))}) "
        f"to {outcome.directory}, catalog date {outcome.meta['catalog_date']}"
    )


def _filtered(
    catalog_dir: Path | None, cloud: str | None, service: str | None, region: str | None, gpu: str | None
) -> Any:
    from imagesmith.picker import catalog as catalog_mod
    from imagesmith.picker.model import CLOUDS, SERVICES
    from imagesmith.picker.query import _gpu_matches, _known, _split

    cat = catalog_mod.load(catalog_dir)
    clouds = _known("cloud", _split(cloud), list(CLOUDS), "--cloud")
    services = _known("service", _split(service), list(SERVICES), "--service")
    regions = _known("region", _split(region), sorted({r.region for r in cat.rows}), "--region")
    names = _split(gpu)
    rows = [
        r
        for r in cat.rows
        if (not clouds or r.cloud in clouds)
        and (not services or r.service in services)
        and (not regions or r.region in regions)
        and (not names or any(_gpu_matches(r.gpu_model, n) for n in names))
    ]
    return cat, rows


@instances.command("list")
@click.option("--cloud", help="aws, gcp, azure (comma-separated).")
@click.option("--service", help="ec2, sagemaker, compute-engine, azure-vm.")
@click.option("--region", help="Region(s).")
@click.option("--gpu", help="GPU model(s); A100 also matches A100-80GB.")
@click.option("--json", "as_json", is_flag=True, help="JSON: {schema, catalog_date, rows}.")
@click.option("--csv", "as_csv", is_flag=True, help="The catalog's own CSV columns.")
@_CATALOG
def list_command(
    cloud: str | None,
    service: str | None,
    region: str | None,
    gpu: str | None,
    as_json: bool,
    as_csv: bool,
    catalog_dir: Path | None,
) -> None:
    """Export the catalog rows (optionally filtered)."""
    cat, rows = _filtered(catalog_dir, cloud, service, region, gpu)
    if as_json:
        click.echo(
            json.dumps(
                {"schema": 1, "catalog_date": cat.catalog_date, "rows": [r.to_json() for r in rows]}, indent=1
            )
        )
    elif as_csv:
        from imagesmith.picker.generate import render_csv

        click.echo(render_csv(rows), nl=False)
    else:
        from imagesmith.picker.render import table

        click.echo(f"catalog {cat.catalog_date}: {len(rows)} rows, on-demand prices (USD per hour)")
        click.echo("\n".join(table(rows, spot=False)))


@instances.command("info")
@click.option("--json", "as_json", is_flag=True, help="The catalog metadata as JSON.")
@_CATALOG
def info_command(as_json: bool, catalog_dir: Path | None) -> None:
    """Print the catalog's date, row counts and the source of every input."""
    from imagesmith.picker import catalog as catalog_mod

    cat = catalog_mod.load(catalog_dir)
    if as_json:
        click.echo(json.dumps(cat.meta, indent=1))
        return
    counts = Counter(f"{r.cloud}/{r.service}/{r.region}" for r in cat.rows)
    meta = cat.meta
    lines = [
        f"catalog: {cat.directory}",
        f"catalog date: {cat.catalog_date} (newest dated source; oldest {meta.get('oldest_source_date') or 'n/a'})",
        f"generated at: {meta.get('generated_at', 'unknown')}",
        f"rows: {len(cat.rows)} ({', '.join(f'{k} {v}' for k, v in sorted(counts.items()))})",
        "sources:",
    ]
    for s in meta.get("sources", []):
        lines.append(
            f"  {s['cloud']}/{s['service']}/{s['region']} {s['format']} [{s['fetched_at']}] {', '.join(s['files'])}"
        )
        lines.append(f"      {s['source']}")
    if meta.get("about"):
        lines.append(f"note: {meta['about']}")
    click.echo("\n".join(lines))
