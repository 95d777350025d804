"""What the provider parsers share: reading files with file-named errors, collecting gate problems."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imagesmith.errors import DataError


@dataclass(frozen=True, kw_only=True)
class Input:
    """One provider file (or page set) named by the sources manifest."""

    cloud: str
    service: str
    region: str
    format: str
    paths: tuple[Path, ...]
    fetched_at: str
    source: str
    confidence: str = "medium"
    spec_from: Path | None = None

    @property
    def path(self) -> Path:
        return self.paths[0]


@dataclass
class Problems:
    """Gate failures gathered over a whole generate run, so that one run reports all of them."""

    items: list[str] = field(default_factory=list)

    def add(self, where: str, message: str) -> None:
        self.items.append(f"{where}: {message}")

    def __bool__(self) -> bool:
        return bool(self.items)


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError("file not found", where=str(path)) from None
    except json.JSONDecodeError as exc:
        raise DataError(f"not JSON: {exc.msg}", where=f"{path}:{exc.lineno}") from None


def expect(value: Any, kind: type, where: str, what: str) -> Any:
    if not isinstance(value, kind):
        raise DataError(f"{what} should be a {kind.__name__}, not {type(value).__name__}", where=where)
    return value


def parse_price(text: Any, where: str) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        raise DataError(f"price {text!r} is not a number", where=where) from None
