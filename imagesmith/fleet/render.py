"""Plain-text answers of `imagesmith fleet`: workloads with their verdict per group of identical nodes."""

from __future__ import annotations

from imagesmith.fleet.gfd import NodeFacts
from imagesmith.fleet.scan import ScanReport, UpgradeReport


def scan_text(report: ScanReport, nodes: list[NodeFacts]) -> str:
    gpu_nodes = sum(1 for n in nodes if n.has_gpu)
    out = [f"{len(nodes)} nodes ({gpu_nodes} with GPUs), {len(report.workloads)} workload images"]
    for w in report.workloads:
        wl = w.workload
        out.append("")
        out.append(f"{wl.namespace}/{wl.name} ({wl.owner}, {len(wl.pods)} pod(s)): {wl.image}")
        if not w.groups:
            out.append("  no node it may land on (node selector, affinity, taints, GPU request)")
            continue
        merged: dict[tuple[str, tuple[str, ...], str], list[str]] = {}
        for g in w.groups:
            merged.setdefault((g.verdict, g.codes, g.what), []).extend(g.nodes)
        for (verdict, codes, what), names in merged.items():
            shown = ", ".join(names[:4]) + (f" (+{len(names) - 4})" if len(names) > 4 else "")
            out.append(f"  {verdict:<18} {what}: {shown}" + (f"  [{', '.join(codes)}]" if codes else ""))
    if report.at_risk:
        out.append("")
        out.append(f"at risk now ({len(report.at_risk)} running pod(s) whose image fails on their node):")
        for a in report.at_risk:
            why = a.messages[0] if a.messages else ""
            out.append(f"  {a.namespace}/{a.pod} on {a.node}: {a.image} [{', '.join(a.codes)}] {why}")
    else:
        out.append("")
        out.append("at risk now: none")
    return "\n".join(out)


def upgrade_text(report: UpgradeReport, *, driver: str | None, gpu: str | None) -> str:
    change = " and ".join(x for x in (f"driver {driver}" if driver else "", f"GPU {gpu}" if gpu else "") if x)
    out = [
        f"{len(report.selected)} node(s) move to {change}: {', '.join(report.selected[:6])}"
        + (" ..." if len(report.selected) > 6 else "")
    ]
    for title, changes in (("breaks", report.breaks), ("fixed", report.fixed)):
        out.append(f"{title} ({len(changes)}):")
        for c in changes:
            why = c.messages[0] if c.messages else ""
            out.append(f"  {c.namespace}/{c.pod} on {c.node}: {c.image} [{', '.join(c.codes)}] {why}")
    out.append(f"unchanged: {report.unchanged} pod(s)")
    return "\n".join(out)
