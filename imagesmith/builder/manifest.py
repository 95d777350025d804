"""The build manifest: ``manifest.json`` for tools and ``manifest.md`` for people, one per run."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from imagesmith import __version__
from imagesmith.builder.model import ImageResult
from imagesmith.builder.sizes import human

SCHEMA = 1


def to_json(
    results: list[ImageResult], *, output_dir: Path, plan: Path, engine: str, started: datetime
) -> dict[str, Any]:
    """The manifest; log paths are relative to ``output_dir`` (where manifest.json lives)."""
    images = []
    for r in results:
        images.append(
            {
                "name": r.name,
                "tag": r.tag,
                "aliases": list(r.aliases),
                "status": r.status,
                "image_id": r.image_id,
                "digest": r.digest,
                "repo_digests": list(r.repo_digests),
                "parent": r.parent,
                "base": r.base_ref,
                "parent_id": r.parent_id,
                "input_hash": r.input_hash,
                "size": r.size,
                "compressed_size": r.compressed_size,
                "added_size": (r.size - r.parent_size)
                if r.size is not None and r.parent_size is not None
                else None,
                "seconds": round(r.seconds, 2),
                "labels": dict(sorted(r.labels.items())),
                "tests": [asdict(t) for t in r.tests],
                "tests_cached": r.tests_cached,
                "packages": [asdict(p) for p in r.packages],
                "sbom": {
                    "path": os.path.relpath(r.sbom.path, output_dir),
                    "inside": r.sbom.inside,
                    "components": r.sbom.components,
                    "sha256": r.sbom.sha256,
                }
                if r.sbom
                else None,
                "pushed": list(r.pushed),
                "failed_step": r.failed_step,
                "error": r.error,
                "skipped_because": r.skipped_because,
                "log": os.path.relpath(r.log_path, output_dir),
            }
        )
    return {
        "schema": SCHEMA,
        "generated_by": f"imagesmith {__version__}",
        "plan": str(plan),
        "engine": engine,
        "started": started.astimezone(UTC).isoformat(timespec="seconds"),
        "images": images,
    }


def to_markdown(data: dict[str, Any]) -> str:
    lines = [
        "# imagesmith build manifest",
        "",
        f"Plan `{data['plan']}`, engine `{data['engine']}`, started {data['started']}.",
        "",
        "| image | status | tag | id | parent | compressed | uncompressed | tests |",
        "|---|---|---|---|---|---:|---:|---|",
    ]
    for image in data["images"]:
        tests = ", ".join(f"{t['name']} {'ok' if t['ok'] else 'FAILED'}" for t in image["tests"]) or "-"
        image_id = (image["image_id"] or "-").removeprefix("sha256:")[:12]
        lines.append(
            f"| {image['name']} | {image['status']} | `{image['tag']}` | {image_id} | {image['parent'] or '-'} "
            f"| {human(image['compressed_size'])} | {human(image['size'])} | {tests} |"
        )
    for image in data["images"]:
        lines += ["", f"## {image['name']}", ""]
        if image["error"]:
            lines.append(f"**Failed** at `{image['failed_step'] or 'setup'}`: {image['error']}")
            lines.append("")
        if image["skipped_because"]:
            lines.append(f"Skipped because `{image['skipped_because']}` failed.")
            continue
        lines.append(f"Tag `{image['tag']}`" + "".join(f", `{a}`" for a in image["aliases"]) + ".")
        if image["labels"]:
            lines += ["", "| label | value |", "|---|---|"]
            lines += [f"| `{k}` | `{v}` |" for k, v in image["labels"].items()]
        if image["packages"]:
            lines += ["", "| Python package | version | size |", "|---|---|---:|"]
            lines += [f"| {p['name']} | {p['version']} | {human(p['size'])} |" for p in image["packages"]]
    return "\n".join(lines) + "\n"


def write(
    output_dir: Path, results: list[ImageResult], *, plan: Path, engine: str, started: datetime
) -> Path:
    data = to_json(results, output_dir=output_dir, plan=plan, engine=engine, started=started)
    path = output_dir / "manifest.json"
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    (output_dir / "manifest.md").write_text(to_markdown(data), encoding="utf-8")
    return path
