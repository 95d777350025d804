"""Timing helpers shared by the benchmarks: wall time of real commands, median of several runs."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

VENV_BIN = Path(sys.executable).parent


def wall(cmd: Sequence[str], *, runs: int = 15, warmup: int = 2, env: dict[str, str] | None = None) -> float:
    """Median wall time of a command (its output discarded); it must succeed or exit 1 (a 'no' answer)."""
    full_env = {**os.environ, **(env or {})}
    times = []
    for i in range(warmup + runs):
        start = time.perf_counter()
        proc = subprocess.run(list(cmd), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=full_env)
        elapsed = time.perf_counter() - start
        if proc.returncode not in (0, 1):
            raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}")
        if i >= warmup:
            times.append(elapsed)
    return statistics.median(times)


def wall_pair(
    ours: Sequence[str],
    theirs: Sequence[str],
    *,
    runs: int = 21,
    warmup: int = 2,
    env: dict[str, str] | None = None,
) -> tuple[float, float]:
    """Median wall times of two commands run alternately (ours, theirs, ours, ...), so that both see the same
    load on a shared machine: a ratio of two medians taken minutes apart measures the machine as much as the
    tool. ``env`` applies to both."""
    full_env = {**os.environ, **(env or {})}
    times: tuple[list[float], list[float]] = ([], [])
    for i in range(warmup + runs):
        for which, cmd in enumerate((ours, theirs)):
            start = time.perf_counter()
            proc = subprocess.run(
                list(cmd), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=full_env
            )
            elapsed = time.perf_counter() - start
            if proc.returncode not in (0, 1):
                raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}")
            if i >= warmup:
                times[which].append(elapsed)
    return statistics.median(times[0]), statistics.median(times[1])


def inproc(fn: Callable[[], object], *, runs: int = 200) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def row(
    name: str, ours: float, baseline: str, theirs: float, note: str = "", *, unit: str | None = None
) -> dict[str, object]:
    """One results row; ``unit="MB"`` for sizes (both values then in megabytes), seconds otherwise."""
    return {
        "name": name,
        "imagesmith_s": ours,
        "baseline": baseline,
        "baseline_s": theirs,
        "ratio": ours / theirs if theirs else float("inf"),
        "note": note,
        **({"unit": unit} if unit else {}),
    }
