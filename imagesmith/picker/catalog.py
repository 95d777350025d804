"""Reading the shipped (or a user-supplied) catalog: a CSV of rows plus a small metadata JSON.

`imagesmith pick` spends its time budget on Python start-up, not here: the two files are parsed once per
content and read back from the parse cache (``imagesmith.parsecache``, ``marshal``) with built-in modules only;
``csv`` and ``json`` are imported on a miss. Rows are built from the cached field values without the keyword
constructor's checks (they were checked when parsed).
"""

from __future__ import annotations

import os

from imagesmith import parsecache
from imagesmith.errors import DataError, EnvironmentProblem
from imagesmith.picker.model import COLUMNS, InstanceRow, from_values, row_from_csv

TYPE_CHECKING = False  # typing costs ~10 ms to import; mypy treats this name as True
if TYPE_CHECKING:
    from typing import Any

DATA_DIR = os.path.join(os.path.dirname(__file__), "data")
CATALOG_FILE = "catalog.csv"
META_FILE = "catalog.meta.json"
ENV_DIR = "IMAGESMITH_CATALOG_DIR"
SCHEMA = 2


class Catalog:
    """The rows, the catalog's date and metadata, and a per-catalog memo (row orders per market, names, image
    verdicts) built on first use."""

    __slots__ = ("cache", "catalog_date", "directory", "meta", "rows")

    def __init__(
        self,
        *,
        rows: tuple[InstanceRow, ...],
        catalog_date: str,
        meta: dict[str, Any],
        directory: str | os.PathLike[str] | None = None,
    ) -> None:
        self.rows = rows
        self.catalog_date = catalog_date
        self.meta = meta
        self.directory = os.fspath(directory) if directory is not None else None
        self.cache: dict[Any, Any] = {}

    @classmethod
    def from_rows(cls, rows: list[InstanceRow] | tuple[InstanceRow, ...], *, catalog_date: str) -> Catalog:
        return cls(rows=tuple(rows), catalog_date=catalog_date, meta={"catalog_date": catalog_date})


_CACHE: dict[str, Catalog] = {}


def default_dir() -> str:
    return os.environ.get(ENV_DIR) or DATA_DIR


def _parse_rows(text: str, path: str) -> list[dict[str, Any]]:
    import csv

    reader = csv.DictReader(text.splitlines())
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or ())]
    if missing:
        raise DataError(f"catalog lacks column(s) {', '.join(missing)}", where=f"{path}:1")
    rows = []
    # One object per distinct string (a source text repeats on hundreds of rows): marshal then writes it once
    # and reads back references, which halves the cached parse and its load time.
    same: dict[str, str] = {}
    for rec in reader:
        try:
            values = row_from_csv(rec).to_json()
            rows.append({k: same.setdefault(v, v) if isinstance(v, str) else v for k, v in values.items()})
        except (KeyError, ValueError, TypeError) as exc:
            raise DataError(f"bad catalog row: {exc}", where=f"{path}:{reader.line_num}") from None
    return rows


def read_rows(path: str | os.PathLike[str]) -> list[InstanceRow]:
    name = os.fspath(path)
    return [from_values(v) for v in _parse_rows(_read(name, "catalog file").decode(), name)]


def _read(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except FileNotFoundError:
        raise EnvironmentProblem(
            f"{what} not found", where=path, hint="run `imagesmith instances generate`"
        ) from None


def _parse(data: bytes, meta_path: str, csv_path: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    import json

    meta_bytes, _, csv_bytes = data.partition(b"\0")
    try:
        meta = json.loads(meta_bytes)
    except json.JSONDecodeError as exc:
        raise DataError(f"not JSON: {exc.msg}", where=f"{meta_path}:{exc.lineno}") from None
    if not isinstance(meta, dict) or meta.get("schema") != SCHEMA:
        got = meta.get("schema") if isinstance(meta, dict) else None
        raise DataError(f"catalog schema {got!r}, this imagesmith reads {SCHEMA}", where=meta_path)
    return meta, _parse_rows(csv_bytes.decode(), csv_path)


def load(directory: str | os.PathLike[str] | None = None) -> Catalog:
    path = os.fspath(directory) if directory is not None else default_dir()
    cached = _CACHE.get(path)
    if cached is not None:
        return cached
    meta_path, csv_path = os.path.join(path, META_FILE), os.path.join(path, CATALOG_FILE)
    # One cached parse for both files: the metadata vouches for the rows, so they are read back together.
    data = _read(meta_path, "catalog metadata") + b"\0" + _read(csv_path, "catalog file")
    meta, values = parsecache.cached(data, "catalog", lambda d: _parse(d, meta_path, csv_path))
    catalog = Catalog(
        rows=tuple(from_values(v) for v in values),
        catalog_date=str(meta.get("catalog_date", "")),
        meta=meta,
        directory=path,
    )
    _CACHE[path] = catalog
    return catalog


def forget(directory: str | os.PathLike[str]) -> None:
    """Drop a cached catalog (after `generate` rewrote it in this process)."""
    _CACHE.pop(os.fspath(directory), None)
