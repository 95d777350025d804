"""Run every bench/bench_*.py (or the suites named: ``run.py doctor picker``) and write bench/results.md.

Each module exposes ``run() -> list[dict]`` with rows ``{name, imagesmith_s, baseline, baseline_s, ratio, note}``
(plus ``unit: "MB"`` for size rows, whose two values are then megabytes), measured side by side against the
real alternative. Nothing here asserts a timing. Rows are kept per suite in bench/results.json, so running
one suite refreshes its rows and keeps the others' (each suite's rows say when they were measured).
"""

from __future__ import annotations

import importlib.util
import json
import platform
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _load(path: Path):  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _cell(value: object, unit: str) -> str:
    v = float(value)  # type: ignore[arg-type]
    if unit == "MB":
        return f"{v:.1f} MB"
    return f"{v * 1e6:.1f} µs" if unit == "us" else f"{v * 1000:.1f} ms"


def render(suites: dict[str, dict[str, object]], failures: list[str]) -> str:
    lines = [
        "# Benchmark results",
        "",
        "Median wall time of repeated runs; ratio = imagesmith / baseline (lower is better). Written by",
        "`make bench` (`python bench/run.py [SUITE ...]`); every suite says when and where it was measured.",
        "",
        "| suite | measurement | imagesmith | baseline | baseline value | ratio | note |",
        "|---|---|---|---|---|---|---|",
    ]
    for suite, entry in sorted(suites.items()):
        for r in entry["rows"]:  # type: ignore[attr-defined]
            unit = str(r.get("unit", "ms"))
            lines.append(
                f"| {suite} | {r['name']} | {_cell(r['imagesmith_s'], unit)} | {r['baseline']} | "
                f"{_cell(r['baseline_s'], unit)} | {float(r['ratio']):.2f} | {r.get('note', '')} |"
            )
    lines += ["", "Measured on:", ""]
    lines += [f"- {suite}: {entry['measured']}" for suite, entry in sorted(suites.items())]
    if failures:
        lines += ["", "## Benchmarks that did not run", "", *(f"- {f}" for f in failures)]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    wanted = set(argv)
    store = HERE / "results.json"
    suites: dict[str, dict[str, object]] = json.loads(store.read_text()) if store.exists() else {}
    failures: list[str] = []
    machine = (
        f"{platform.machine()}, {platform.system()} {platform.release()}, Python {platform.python_version()}"
    )
    for path in sorted(HERE.glob("bench_*.py")):
        suite = path.stem.removeprefix("bench_")
        if wanted and suite not in wanted:
            continue
        print(f"bench: {path.stem} ...", flush=True)
        started = time.perf_counter()
        try:
            rows = list(_load(path).run())
            stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime())
            suites[suite] = {"measured": f"{stamp} ({machine})", "rows": rows}
        except Exception as exc:  # a broken benchmark is reported, the others still run
            failures.append(f"{path.stem}: {type(exc).__name__}: {exc}")
            suites.pop(suite, None)
            traceback.print_exc()
        print(f"bench: {path.stem} done in {time.perf_counter() - started:.1f}s", flush=True)
    store.write_text(json.dumps(suites, indent=2) + "\n")
    text = render(suites, failures)
    (HERE / "results.md").write_text(text)
    print(text)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
