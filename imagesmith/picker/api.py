"""`imagesmith.picker.pick(...)`: the Python face of `imagesmith pick`: a `PickRequest` (or its fields as
keywords, the CLI's flags with underscores), same string grammar."""

from __future__ import annotations

from imagesmith.picker import catalog as catalog_mod
from imagesmith.picker import query as query_mod
from imagesmith.picker.allocatable import offer
from imagesmith.picker.request import PickRequest
from imagesmith.picker.result import PickResult
from imagesmith.picker.select import _cc, select

TYPE_CHECKING = False  # typing and pathlib cost ~20 ms to import; `imagesmith pick` is timed
if TYPE_CHECKING:
    from os import PathLike
    from typing import Any


def pick(
    request: PickRequest | None = None,
    /,
    *,
    catalog: catalog_mod.Catalog | PathLike[str] | str | None = None,
    **constraints: Any,
) -> PickResult:
    """The cheapest catalog row meeting every constraint; raises UsageError naming the flag on bad input.

    ``catalog`` is a loaded Catalog, a directory holding catalog.csv + catalog.meta.json, or None for the shipped
    one (or $IMAGESMITH_CATALOG_DIR). A result with ``choice=None`` is a negative answer, not an error.
    """
    if request is None:
        request = PickRequest(**constraints)  # the same names as the CLI's flags (PickRequest's fields)
    elif constraints:
        raise TypeError("pass a PickRequest or keyword constraints, not both")
    image = request.image
    cat = catalog if isinstance(catalog, catalog_mod.Catalog) else catalog_mod.load(catalog)
    image_filter = None
    if image is not None:
        from imagesmith.picker.image import image_filter as build_filter

        key = ("image", image)
        if key not in cat.cache:
            caps = {
                c for r in cat.rows if r.compute_capability and (c := _cc(r.compute_capability)) is not None
            }
            cat.cache[key] = build_filter(image, caps)
        image_filter = cat.cache[key]
    q = query_mod.build(cat, request, image=image_filter)
    sel = select(cat, q)
    return PickResult(
        choice=sel.choice,
        alternatives=sel.alternatives,
        rejected=sel.rejected,
        rejected_total=sel.rejected_total,
        catalog_date=cat.catalog_date,
        spot=request.spot,
        query=q.describe(),
        searched=_searched(cat, q),
        offer=offer(sel.choice, q.headroom) if sel.choice is not None and q.fit == "pods" else None,
    )


def _searched(cat: catalog_mod.Catalog, q: query_mod.Query) -> dict[str, Any]:
    """The catalog and the scope the query searched (memoised per catalog and scope)."""
    key = ("searched", q.clouds, q.services, q.regions, q.zones, q.instance_types)
    if key not in cat.cache:
        from imagesmith.picker.model import family
        from imagesmith.picker.select import in_scope

        rows = [r for r in cat.rows if in_scope(r, q)]
        scope = {(r.cloud, r.service, r.region) for r in rows} | {(r.cloud, r.service, "*") for r in rows}
        sources = [
            f"{s.get('cloud')}/{s.get('service')}/{s.get('region')}: {s.get('source') or s.get('format')} ({s.get('fetched_at')})"
            for s in cat.meta.get("sources", ())
            if isinstance(s, dict) and (s.get("cloud"), s.get("service"), s.get("region")) in scope
        ]
        # Families per distinct type (a type repeats in every region and zone of a multi-region catalog).
        types = {(r.cloud, r.instance_type): r for r in rows}
        confidence: dict[str, int] = {}
        for r in rows:
            confidence[r.confidence] = confidence.get(r.confidence, 0) + 1
        cat.cache[key] = {
            "catalog_date": cat.catalog_date,
            "sources": sources,
            "rows": len(rows),
            "clouds": sorted({r.cloud for r in rows}),
            "services": sorted({r.service for r in rows}),
            "regions": sorted({r.region for r in rows}),
            "zones": len({(r.region, r.zone) for r in rows if r.zone}),
            "confidence": {c: confidence[c] for c in ("high", "medium", "low") if c in confidence},
            "families": sorted({family(r) for r in types.values()}),
        }
    searched: dict[str, Any] = cat.cache[key]
    return searched
