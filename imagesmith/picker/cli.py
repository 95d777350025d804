"""`imagesmith pick` and `imagesmith instances {generate,list,info}`: thin translators onto the picker core."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import click

from imagesmith.picker.request import default as default_of
from imagesmith.picker.request import flags

_CATALOG = click.option(
    "--catalog",
    "catalog_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Catalog directory (catalog.csv + catalog.meta.json); default: the shipped one or $IMAGESMITH_CATALOG_DIR.",
)


def _constraint_options(command: Any) -> Any:
    """The constraint flags, generated from PickRequest's fields (the one list of them)."""
    for name, flag, meta in reversed(flags()):
        kind: dict[str, Any] = {"help": meta["help"]}
        default = default_of(name)
        if isinstance(default, bool):
            kind["is_flag"] = True
        elif isinstance(default, int):
            kind.update(type=int, default=default, show_default=True)
        elif default is not None:
            kind.update(default=default, show_default=True)
        if "choices" in meta:
            kind["type"] = click.Choice(list(meta["choices"]))
        command = click.option(flag, name, **kind)(command)
    return command


@click.command("pick")
@_constraint_options
@click.option("--json", "as_json", is_flag=True, help="Print the answer as JSON (schema 1).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["k8s", "karpenter", "sagemaker"]),
    help="Print a ready snippet instead.",
)
@_CATALOG
def pick(as_json: bool, fmt: str | None, catalog_dir: Path | None, **options: Any) -> None:
    """Choose the cheapest instance that fits the workload (exit 1 when none does)."""
    from imagesmith.picker.answer import answer

    text, negative = answer({**options, "as_json": as_json, "fmt": fmt, "catalog_dir": catalog_dir})
    if text is not None:
        click.echo(text)
    if negative is not None:
        raise negative


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
