"""The answer of a pick, and its JSON form (schema 1, see docs/picker.md)."""

from __future__ import annotations

from imagesmith.contract.record import field, record
from imagesmith.picker.allocatable import Offer
from imagesmith.picker.model import InstanceRow
from imagesmith.picker.select import Rejection

SCHEMA = 1


TYPE_CHECKING = False  # typing costs ~10 ms to import; `imagesmith pick` is timed
if TYPE_CHECKING:
    from typing import Any


@record
class PickResult:
    choice: InstanceRow | None
    alternatives: tuple[InstanceRow, ...]
    rejected: tuple[Rejection, ...]
    rejected_total: int
    catalog_date: str
    spot: bool
    query: dict[str, Any]
    # Where the answer looked: the catalog (date, sources) and the clouds, services, regions and instance
    # families of the rows in scope. An answer is only as good as what it searched.
    searched: dict[str, Any] = field(default_factory=dict)
    # What the chosen node offers pods (capacity, the provider's reservations, the headroom); None when fitting
    # the nameplate (--fit machine) or where no kubelet runs (SageMaker).
    offer: Offer | None = None

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
            "offer": self.offer.to_json() if self.offer else None,
            "alternatives": [r.to_json() for r in self.alternatives],
            "rejected": [r.to_json() for r in self.rejected],
            "rejected_total": self.rejected_total,
            "searched": self.searched,
        }
