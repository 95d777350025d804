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
    """Move the project's `FROM tag@sha256:...` pins (the shipped base and the dev stage's devel twin) to their
    tags' newest digests; print what changed."""
    from imagesmith.templating import bump

    found = bump.plan_bumps(project / "Dockerfile")
    moved = tuple(b for b in found if b.moved)
    for each in found:
        if not each.moved:
            click.echo(f"up to date: {each.tag}@{each.new}")
            continue
        click.echo(f"{each.tag}: {each.old or 'not pinned'} -> {each.new}")
        for line in each.changes:
            click.echo(f"  {line}")
    if not moved:
        return EXIT_OK
    if check:
        return EXIT_NEGATIVE
    bump.apply(moved)
    for each in moved:
        click.echo(f"rewrote {each.dockerfile}: ARG {each.arg}={each.tag}@{each.new}")
    return EXIT_OK
