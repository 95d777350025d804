"""`imagesmith.picker.pick(...)`: the Python face of `imagesmith pick`, same flags, same string grammar."""

from __future__ import annotations

from pathlib import Path

from imagesmith.picker import catalog as catalog_mod
from imagesmith.picker import query as query_mod
from imagesmith.picker.result import PickResult
from imagesmith.picker.select import _cc, select


def pick(
    *,
    cpus: str | None = None,
    memory: str | None = None,
    gpus: str | None = None,
    gpu: str | None = None,
    gpu_memory: str | None = None,
    gpu_memory_basis: str = "nominal",
    min_cc: str | None = None,
    arch: str | None = None,
    cloud: str | None = None,
    service: str | None = None,
    region: str | None = None,
    spot: bool = False,
    max_price: str | float | None = None,
    allow_fractional: bool = False,
    no_burstable: bool = False,
    image: str | None = None,
    top: int = 5,
    catalog: catalog_mod.Catalog | Path | str | None = None,
) -> PickResult:
    """The cheapest catalog row meeting every constraint; raises UsageError naming the flag on bad input.

    ``catalog`` is a loaded Catalog, a directory holding catalog.csv + catalog.meta.json, or None for the shipped
    one (or $IMAGESMITH_CATALOG_DIR). A result with ``choice=None`` is a negative answer, not an error.
    """
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
    q = query_mod.build(
        cat,
        cpus=cpus,
        memory=memory,
        gpus=gpus,
        gpu=gpu,
        gpu_memory=gpu_memory,
        gpu_memory_basis=gpu_memory_basis,
        min_cc=min_cc,
        arch=arch,
        cloud=cloud,
        service=service,
        region=region,
        spot=spot,
        max_price=max_price,
        allow_fractional=allow_fractional,
        no_burstable=no_burstable,
        top=top,
        image=image_filter,
    )
    sel = select(cat, q)
    return PickResult(
        choice=sel.choice,
        alternatives=sel.alternatives,
        rejected=sel.rejected,
        rejected_total=sel.rejected_total,
        catalog_date=cat.catalog_date,
        spot=spot,
        query=q.describe(),
    )
