"""``imagesmith matrix harvest``: flags in, findings out (text or JSON)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import click

from imagesmith.errors import EXIT_NEGATIVE, EXIT_OK


@click.command("harvest")
@click.argument("specs", nargs=-1)
@click.option(
    "--deep", is_flag=True, help="Also download the wheels and read the SASS/PTX of their CUDA libraries."
)
@click.option(
    "--check", is_flag=True, help="Exit 1 listing index releases the data does not know, and contradictions."
)
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
@click.option("--write", is_flag=True, help='Add the new rows to the data files (confidence = "artifact").')
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    default=None,
    help="The data files to compare with and write to (default: imagesmith's own, in a checkout).",
)
@click.option(
    "--index-url", default="https://pypi.org", show_default=True, help="A PEP 691 index (a mirror works)."
)
@click.option("--ca-cert", type=click.Path(path_type=Path, dir_okay=False, exists=True), default=None)
def harvest_command(
    specs: tuple[str, ...],
    deep: bool,
    check: bool,
    as_json: bool,
    write: bool,
    data_dir: Path | None,
    index_url: str,
    ca_cert: Path | None,
) -> int:
    """Read compatibility facts from the published artifacts and compare them with the data.

    SPEC: PROJECT[==VERSION] (torch, tensorflow, jax-cuda12-plugin, ...; newest final release when no
    version) or nvcc==CUDA_RELEASE (nvcc's own target list, from the nvidia-cuda-nvcc wheel). Each fact
    names its artifact and sha256. Without SPEC: the newest torch, TensorFlow and JAX CUDA plugins.
    """
    from imagesmith.harvest import compare, run
    from imagesmith.harvest.pypi import Index
    from imagesmith.matrix import knowledge

    kb = knowledge.load(data_dir)
    index = Index(index_url, ca_cert=ca_cert)
    parsed = [run.Spec.parse(s) for s in (specs or run.DEFAULT_SPECS)]
    found = [fact for spec in parsed for fact in run.harvest(index, spec, deep_scan=deep)]
    findings = compare.compare(kb, found)
    stale = run.staleness(index, kb) if check else ()
    contradicted = [f for f in findings if f.status == "contradicted"]
    if as_json:
        payload = {
            "schema": 1,
            "findings": [{**asdict(f), "provenance": asdict(f.provenance)} for f in findings],
            "stale": [asdict(s) for s in stale if s.unknown],
        }
        click.echo(json.dumps(payload, indent=2))
    else:
        for f in findings:
            if f.status == "info":
                click.echo(f"  info          {f.subject}: {f.key} = {f.artifact}  [{f.provenance}]")
                continue
            data = f" (data: {f.data}, {f.where})" if f.data is not None else ""
            click.echo(f"  {f.status:<13} {f.subject}: {f.key} = {f.artifact}{data}  [{f.provenance}]")
        for s in stale:
            if s.unknown:
                click.echo(f"  STALE         {s.project}: on the index but not in the data: {', '.join(s.unknown)}"
                           f" (data knows up to {s.newest_known or 'nothing'})")  # fmt: skip
        counts = {k: sum(1 for f in findings if f.status == k) for k in ("confirmed", "contradicted", "new")}
        click.echo(
            f"{counts['confirmed']} confirmed, {counts['contradicted']} contradicted, {counts['new']} new"
            + (f"; {sum(1 for s in stale if s.unknown)} stale project(s)" if check else "")
        )
    if write:
        from imagesmith.harvest import write as writer
        from imagesmith.matrix.knowledge import DATA_DIR

        todo, skipped = writer.writes(findings)
        for line in [*writer.apply(data_dir or Path(DATA_DIR), todo), *skipped]:
            click.echo(line, err=as_json)
        knowledge.load(data_dir).validate()  # what was written loads (a broken row fails here, file:line)
    if check and (contradicted or any(s.unknown for s in stale)):
        return EXIT_NEGATIVE
    return EXIT_OK
