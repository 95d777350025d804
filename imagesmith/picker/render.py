"""Plain-text answers (no rich: a pick must start fast, and the table is small enough to align by hand)."""

from __future__ import annotations

from imagesmith.picker.allocatable import PROVIDER_NAME, Offer
from imagesmith.picker.model import InstanceRow
from imagesmith.picker.result import PickResult

TYPE_CHECKING = False  # collections.abc costs ~3 ms to import; `imagesmith pick` is timed
if TYPE_CHECKING:
    from collections.abc import Sequence


def _gpu(row: InstanceRow) -> str:
    if not row.gpu_model:
        return "-"
    mem = f" {row.gpu_memory_nominal_gb_each:g}GB" if row.gpu_memory_nominal_gb_each else ""
    return f"{row.gpu_count:g}x {row.gpu_model}{mem} cc{row.compute_capability}"


def _price(value: float | None) -> str:
    return f"${value:.4f}/h" if value is not None else "no price"


def table(rows: Sequence[InstanceRow], *, spot: bool, extra: Sequence[str] | None = None) -> list[str]:
    head = [
        "CLOUD",
        "SERVICE",
        "REGION",
        "ZONE",
        "INSTANCE",
        "ARCH",
        "vCPU",
        "MEM GiB",
        "GPU",
        "PRICE",
        "CONF",
    ]
    body = [
        [r.cloud, r.service, r.region, r.zone or "-", r.instance_type, r.arch, f"{r.vcpus:g}", f"{r.memory_gib:g}",
         _gpu(r), _price(r.price(spot=spot)), r.confidence]
        for r in rows
    ]  # fmt: skip
    if extra is not None:
        head.append("WHY NOT")
        for line, text in zip(body, extra, strict=True):
            line.append(text)
    widths = [max(len(line[i]) for line in [head, *body]) for i in range(len(head))]
    return [
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in [head, *body]
    ]


def offer_line(o: Offer) -> str:
    return (
        f"for pods: {o.cpus:.2f} vCPU, {o.memory_gib:.2f} GiB = {PROVIDER_NAME[o.provider]} allocatable "
        f"{o.allocatable_cpus:.2f} vCPU, {o.allocatable_memory_gib:.2f} GiB (of {o.capacity_cpus:g}, "
        f"{o.capacity_memory_gib:g}{f'; {o.max_pods} max pods' if o.max_pods else ''}) less DaemonSet headroom "
        f"{o.headroom.cpus:g} vCPU, {o.headroom.memory_gib:g} GiB [{o.confidence} confidence]"
    )


def pick_text(result: PickResult) -> str:
    market = "spot" if result.spot else "on-demand"
    out = [f"catalog {result.catalog_date}, {market} prices (USD per hour)"]
    searched = result.searched
    if searched:
        families = list(searched.get("families", ()))
        shown = ", ".join(families[:12]) + (f" and {len(families) - 12} more" if len(families) > 12 else "")
        regions = list(searched.get("regions", ()))
        where = (
            ", ".join(regions)
            if len(regions) <= 6
            else f"{len(regions)} regions ({', '.join(regions[:4])}, ...)"
        )
        zones = searched.get("zones")
        out.append(
            f"searched {searched.get('rows')} rows: {', '.join(searched.get('services', ()))} in {where}"
            f"{f' ({zones} zones)' if zones else ''}; families {shown}"
        )
    if result.choice is not None:
        out.append("")
        out.append("choice:")
        out += ["  " + line for line in table([result.choice], spot=result.spot)]
        if result.offer is not None:
            out.append("  " + offer_line(result.offer))
        notes = result.choice.notes
        if result.choice.burstable:
            out.append("  note: burstable (a baseline share of CPU plus credits); --no-burstable excludes it")
            if notes and "burstable" in notes.lower():
                notes = ""  # the row's own note says the same thing: say it once
        if notes:
            out.append(f"  note: {notes}")
        if result.alternatives:
            out.append("")
            out.append("alternatives:")
            out += ["  " + line for line in table(result.alternatives, spot=result.spot)]
    else:
        out.append("")
        out.append("no instance fits every constraint")
    if result.rejected:
        out.append("")
        title = "cheaper rows rejected" if result.choice is not None else "closest options"
        out.append(f"{title} ({len(result.rejected)} of {result.rejected_total}):")
        why = ["; ".join(str(f) for f in r.failed) for r in result.rejected]
        out += ["  " + line for line in table([r.row for r in result.rejected], spot=result.spot, extra=why)]
    return "\n".join(out)
