"""Reading the shipped (or a user-supplied) catalog: a CSV of rows plus a small metadata JSON.

Stdlib only and cached: `imagesmith pick` spends its time budget on Python start-up, not here.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imagesmith.errors import DataError, EnvironmentProblem
from imagesmith.picker.model import COLUMNS, InstanceRow, row_from_csv

DATA_DIR = Path(__file__).parent / "data"
CATALOG_FILE = "catalog.csv"
META_FILE = "catalog.meta.json"
ENV_DIR = "IMAGESMITH_CATALOG_DIR"
SCHEMA = 1


@dataclass(frozen=True, kw_only=True)
class Catalog:
    rows: tuple[InstanceRow, ...]
    catalog_date: str
    meta: dict[str, Any] = field(hash=False, compare=False)
    directory: Path | None = None
    # Per-catalog memo (row orders per market, image verdicts): built on first use, never part of equality.
    cache: dict[Any, Any] = field(default_factory=dict, hash=False, compare=False, repr=False)

    @classmethod
    def from_rows(cls, rows: list[InstanceRow] | tuple[InstanceRow, ...], *, catalog_date: str) -> Catalog:
        return cls(rows=tuple(rows), catalog_date=catalog_date, meta={"catalog_date": catalog_date})


_CACHE: dict[Path, Catalog] = {}


def default_dir() -> Path:
    env = os.environ.get(ENV_DIR)
    return Path(env) if env else DATA_DIR


def read_rows(path: Path) -> list[InstanceRow]:
    try:
        fh = path.open(newline="")
    except FileNotFoundError:
        raise EnvironmentProblem(
            "catalog file not found", where=str(path), hint="run `imagesmith instances generate`"
        ) from None
    with fh:
        reader = csv.DictReader(fh)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or ())]
        if missing:
            raise DataError(f"catalog lacks column(s) {', '.join(missing)}", where=f"{path}:1")
        rows = []
        for rec in reader:
            try:
                rows.append(row_from_csv(rec))
            except (KeyError, ValueError) as exc:
                raise DataError(f"bad catalog row: {exc}", where=f"{path}:{reader.line_num}") from None
    return rows


def load(directory: Path | str | None = None) -> Catalog:
    path = Path(directory) if directory is not None else default_dir()
    cached = _CACHE.get(path)
    if cached is not None:
        return cached
    meta_path = path / META_FILE
    try:
        meta = json.loads(meta_path.read_text())
    except FileNotFoundError:
        raise EnvironmentProblem(
            "catalog metadata not found", where=str(meta_path), hint="run `imagesmith instances generate`"
        ) from None
    except json.JSONDecodeError as exc:
        raise DataError(f"not JSON: {exc.msg}", where=f"{meta_path}:{exc.lineno}") from None
    if meta.get("schema") != SCHEMA:
        raise DataError(
            f"catalog schema {meta.get('schema')!r}, this imagesmith reads {SCHEMA}", where=str(meta_path)
        )
    catalog = Catalog(
        rows=tuple(read_rows(path / CATALOG_FILE)),
        catalog_date=str(meta.get("catalog_date", "")),
        meta=meta,
        directory=path,
    )
    _CACHE[path] = catalog
    return catalog


def forget(directory: Path) -> None:
    """Drop a cached catalog (after `generate` rewrote it in this process)."""
    _CACHE.pop(directory, None)
