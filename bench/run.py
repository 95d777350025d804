"""Run every bench/bench_*.py and write bench/results.md.

Each module exposes ``run() -> list[dict]`` with rows ``{name, imagesmith_s, baseline, baseline_s, ratio, note}``,
measured side by side against the real alternative. Nothing here asserts a timing.
"""

from __future__ import annotations

import importlib.util
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


def main(argv: list[str]) -> int:
    wanted = set(argv)
    rows: list[dict[str, object]] = []
    failures: list[str] = []
    for path in sorted(HERE.glob("bench_*.py")):
        if wanted and path.stem.removeprefix("bench_") not in wanted:
            continue
        print(f"bench: {path.stem} ...", flush=True)
        started = time.perf_counter()
        try:
            for row in _load(path).run():
                rows.append({"suite": path.stem.removeprefix("bench_"), **row})
        except Exception as exc:  # a broken benchmark is reported, the others still run
            failures.append(f"{path.stem}: {type(exc).__name__}: {exc}")
            traceback.print_exc()
        print(f"bench: {path.stem} done in {time.perf_counter() - started:.1f}s", flush=True)
    lines = [
        "# Benchmark results",
        "",
        f"Machine: {platform.machine()}, {platform.system()} {platform.release()}, Python {platform.python_version()}. "
        "Median wall time of repeated runs; ratio = imagesmith / baseline (lower is better).",
        "",
        "| suite | measurement | imagesmith | baseline | baseline time | ratio | note |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['suite']} | {r['name']} | {float(r['imagesmith_s']) * 1000:.1f} ms | {r['baseline']} | "  # type: ignore[arg-type]
            f"{float(r['baseline_s']) * 1000:.1f} ms | {float(r['ratio']):.2f} | {r.get('note', '')} |"  # type: ignore[arg-type]
        )
    if failures:
        lines += ["", "## Benchmarks that did not run", "", *(f"- {f}" for f in failures)]
    (HERE / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
