"""``imagesmith images bump``: the project side of the curated image contract."""

from __future__ import annotations

from pathlib import Path

import click

from imagesmith.errors import EXIT_NEGATIVE, EXIT_OK


@click.command("bump")
@click.argument(
    "project", type=click.Path(path_type=Path, file_okay=False, exists=True), default=Path(), required=False
)
@click.option("--check", is_flag=True, help="Change nothing; exit 1 when the pin would move.")
def bump_command(project: Path, check: bool) -> int:
    """Move the project's `FROM tag@sha256:...` pin to the tag's newest digest; print what changed."""
    from imagesmith.templating import bump

    found = bump.plan_bump(project / "Dockerfile")
    if not found.moved:
        click.echo(f"up to date: {found.tag}@{found.new}")
        return EXIT_OK
    before = found.old or "not pinned"
    click.echo(f"{found.tag}: {before} -> {found.new}")
    for line in found.changes:
        click.echo(f"  {line}")
    if check:
        return EXIT_NEGATIVE
    bump.apply(found)
    click.echo(f"rewrote {found.dockerfile}: ARG BASE_IMAGE={found.tag}@{found.new}")
    return EXIT_OK
