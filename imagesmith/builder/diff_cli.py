"""``imagesmith images diff OLD NEW``: flags in, the diff record out (text or JSON)."""

from __future__ import annotations

import json
from typing import Any

import click

from imagesmith.errors import EXIT_NEGATIVE, EXIT_OK


def _client() -> Any:
    from imagesmith.builder import engine

    return engine.connect()


@click.command("diff")
@click.argument("old")
@click.argument("new")
@click.option("--json", "as_json", is_flag=True, help="Print the differences as JSON.")
def diff_command(old: str, new: str, as_json: bool) -> int:
    """What changed between two builds: packages (from the SBOMs), CUDA/cuDNN/driver floor, labels, size.

    OLD and NEW are local image references or build manifests (`out/manifest.json`, or
    `out/manifest.json#IMAGE` for one image). Exit 0 when nothing changed, 1 when something did.
    """
    from imagesmith.builder import diff

    diffs = diff.diff(diff.read(old, _client), diff.read(new, _client))
    if as_json:
        click.echo(json.dumps(diff.to_json(diffs), indent=2))
    else:
        for line in diff.to_text(diffs):
            click.echo(line)
    return EXIT_OK if all(d.same for d in diffs) else EXIT_NEGATIVE
