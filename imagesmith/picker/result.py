"""The answer of a pick, and its JSON form (schema 1, see docs/picker.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from imagesmith.picker.model import InstanceRow
from imagesmith.picker.select import Rejection

SCHEMA = 1


@dataclass(frozen=True, kw_only=True)
class PickResult:
    choice: InstanceRow | None
    alternatives: tuple[InstanceRow, ...]
    rejected: tuple[Rejection, ...]
    rejected_total: int
    catalog_date: str
    spot: bool
    query: dict[str, Any] = field(hash=False, compare=False)
    # Where the answer looked: the catalog (date, sources) and the clouds, services, regions and instance
    # families of the rows in scope. An answer is only as good as what it searched.
    searched: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @property
    def found(self) -> bool:
        return self.choice is not None

    def price(self, row: InstanceRow) -> float | None:
        return row.price(spot=self.spot)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "catalog_date": self.catalog_date,
            "market": "spot" if self.spot else "on-demand",
            "query": self.query,
            "choice": self.choice.to_json() if self.choice else None,
            "alternatives": [r.to_json() for r in self.alternatives],
            "rejected": [r.to_json() for r in self.rejected],
            "rejected_total": self.rejected_total,
            "searched": self.searched,
        }
