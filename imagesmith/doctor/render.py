"""Doctor output: a verdict line first, then findings, then the facts table (text), or JSON schema 1."""

from __future__ import annotations

from imagesmith.doctor.facts import Facts
from imagesmith.doctor.findings import Diagnosis

_VERDICT = {
    "ok": "OK: CUDA libraries resolve consistently with this node's driver.",
    "warning": "WARNING: CUDA should work, with caveats below.",
    "error": "ERROR: CUDA will not work as configured; see the fixes below.",
}


def to_json(facts: Facts, result: Diagnosis) -> dict[str, object]:
    return {
        **result.to_json(),
        "root": facts.root,
        "environment": facts.env,
        "device_nodes": list(facts.device_nodes),
        "gpus": [
            {
                "index": g.index,
                "name": g.name,
                "brand": g.brand,
                "capability": g.capability,
                "memory_mib": g.memory_mib,
            }
            for g in facts.probe.gpus
        ],
        "libraries": [lib.to_json() for lib in facts.libraries],
        "frameworks": [
            {
                "name": f.name,
                "version": f.version,
                "cuda": f.cuda,
                "path": f.path,
                "pins": f.pins,
                "sass": list(f.sass),
                "ptx": list(f.ptx),
                "arch_source": f.arch_source,
            }
            for f in facts.frameworks
        ],
        "glibc": {
            "version": facts.glibc_version,
            "required": facts.glibc_required,
            "required_by": facts.glibc_required_by,
        },
        "loader": {
            "system_dirs": list(facts.loader_system_dirs),
            "ld_so_conf_d": list(facts.ld_conf_files),
            "libcuda": _edge(facts.libcuda),
            "nvml": _edge(facts.nvml),
        },
    }


def _edge(edge: object) -> dict[str, object] | None:
    from imagesmith.contract.record import as_dict

    if edge is None:
        return None
    out = as_dict(edge)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}


def _findings(result: Diagnosis) -> list[str]:
    lines: list[str] = []
    for f in result.findings:
        lines.append(f"[{f.severity.upper()}] {f.code}: {f.message}")
        lines += [f"    evidence: {e}" for e in f.evidence]
        lines.append(f"    fix: {f.fix}")
    return lines


def to_text(facts: Facts, result: Diagnosis) -> str:
    lines = [_VERDICT[result.status], ""]
    lines += _findings(result)
    if result.findings:
        lines.append("")
    d = result.driver
    rows = [
        ("driver (kernel module)", facts.kernel_module or "-"),
        ("NVML driver / CUDA", f"{d.get('nvml_driver') or '-'} / {d.get('nvml_cuda') or '-'}"),
        (
            "cuDriverGetVersion / cuInit",
            f"{d.get('cuda_driver_version') or '-'} / {d.get('cu_init') if d.get('cu_init') is not None else '-'}",
        ),
        ("libcuda.so.1", f"{d.get('libcuda') or 'not found'} ({d.get('libcuda_origin') or '-'})"),
        ("device nodes", ", ".join(facts.device_nodes) or "none"),
        ("glibc", f"{facts.glibc_version or '?'} (tree needs {facts.glibc_required or '-'})"),
    ]
    rows += [
        (f"GPU {g.index}", f"{g.name} sm_{(g.capability or '?').replace('.', '')} {g.brand or ''}")
        for g in facts.probe.gpus
    ]
    rows += [(f"framework {f.name}", f"{f.version} (cuda {f.cuda or '-'})") for f in facts.frameworks]
    if d.get("probe_error"):
        rows.append(("probe", str(d["probe_error"])))
    width = max(len(k) for k, _ in rows)
    lines += [f"{k.ljust(width)}  {v}" for k, v in rows]
    if facts.libraries:
        lines.append("")
        lines.append("libraries (* = picked by the loader):")
        for lib in facts.libraries:
            mark = "*" if lib.loaded else " "
            lines.append(
                f" {mark} {lib.name:<24} {lib.version or '?':<12} {lib.origin:<8} {lib.path}"
                + (f"  [{lib.via}]" if lib.via else "")
            )
    return "\n".join(lines)


def image_text(result: Diagnosis) -> str:
    subject = result.subject
    verdict = {"ok": "will run", "warning": "will run, with caveats", "error": "will NOT run"}[result.status]
    lines = [
        f"{subject.get('image')}: {verdict} on this node (driver {result.driver.get('version') or 'none'})"
    ]
    if subject.get("source"):
        at = f" at {subject['digest']}" if subject.get("digest") else ""
        why = f" (registry: {subject['registry_error']})" if subject.get("registry_error") else ""
        lines.append(f"  labels read from the {subject['source']}{at}{why}")
    lines += _findings(result)
    return "\n".join(lines)
