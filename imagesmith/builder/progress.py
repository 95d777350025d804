"""What a person watches: one live line per image on a terminal, one line per state change elsewhere,
and the final summary table with the failures' step and log tail."""

from __future__ import annotations

import threading
import time
from types import TracebackType
from typing import Any

from imagesmith.builder.model import BUILT, FAILED, SKIPPED, UNCHANGED, ImageResult
from imagesmith.builder.sizes import human

_STYLE = {
    BUILT: "green",
    UNCHANGED: "green",
    FAILED: "bold red",
    SKIPPED: "yellow",
    "queued": "dim",
}


class Progress:
    """Thread-safe; ``with Progress(console, names) as progress: progress.update(name, state, detail)``."""

    def __init__(self, console: Any, names: tuple[str, ...]) -> None:
        self.console = console
        self.names = names
        self.states: dict[str, tuple[str, str, float]] = {n: ("queued", "", time.monotonic()) for n in names}
        self.started: dict[str, float] = {}
        self._lock = threading.Lock()
        self._live: Any = None

    def _render(self) -> Any:
        from rich.table import Table

        table = Table.grid(padding=(0, 2))
        now = time.monotonic()
        for name in self.names:
            state, detail, _ = self.states[name]
            began = self.started.get(name)
            clock = f"{now - began:5.0f}s" if began is not None and state not in ("queued", SKIPPED) else ""
            table.add_row(
                f"[{_STYLE.get(state, 'cyan')}]{state:<10}[/]", name, f"[dim]{detail[:80]}[/]", clock
            )
        return table

    def __enter__(self) -> Progress:
        if self.console.is_terminal:
            from rich.live import Live

            self._live = Live(self._render(), console=self.console, refresh_per_second=4, transient=False)
            self._live.__enter__()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._live is not None:
            self._live.update(self._render())
            self._live.__exit__(kind, value, tb)

    def update(self, name: str, state: str, detail: str = "") -> None:
        with self._lock:
            previous = self.states.get(name, ("", "", 0.0))[0]
            self.states[name] = (state, detail, time.monotonic())
            if state not in ("queued", SKIPPED) and name not in self.started:
                self.started[name] = time.monotonic()
            if self._live is not None:
                self._live.update(self._render())
            elif state != previous and state != "queued":
                # Plain logs (CI): only transitions, so a step counter does not flood the output.
                suffix = f" ({detail})" if detail and state in (FAILED, SKIPPED) else ""
                self.console.print(f"{name}: {state}{suffix}", markup=False, highlight=False)


def summary(console: Any, results: list[ImageResult], output_dir: str) -> None:
    from rich.table import Table

    table = Table(title="imagesmith build", title_justify="left")
    for column, justify in (
        ("image", "left"),
        ("status", "left"),
        ("id", "left"),
        ("compressed", "right"),
        ("uncompressed", "right"),
        ("time", "right"),
        ("tests", "left"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for result in results:
        tests = ", ".join(f"{t.name}{'' if t.ok else ' FAILED'}" for t in result.tests)
        if result.tests_cached:
            tests += " (cached)"
        table.add_row(
            result.name,
            f"[{_STYLE.get(result.status, '')}]{result.status}[/]",
            (result.image_id or "-").removeprefix("sha256:")[:12],
            human(result.compressed_size),
            human(result.size),
            f"{result.seconds:.1f}s" if result.status != SKIPPED else "-",
            tests or "-",
        )
    console.print(table)
    for result in results:
        if result.status == FAILED:
            console.print(
                f"[bold red]{result.name} failed[/] at {result.failed_step or 'setup'}: {result.error}",
                highlight=False,
            )
            for line in result.log_tail:
                console.print(f"  | {line}", markup=False, highlight=False)
            console.print(f"  full log: {result.log_path}", markup=False, highlight=False)
        elif result.status == SKIPPED:
            console.print(
                f"[yellow]{result.name} skipped[/]: its ancestor {result.skipped_because} failed",
                highlight=False,
            )
    console.print(f"manifest: {output_dir}/manifest.json, {output_dir}/manifest.md", markup=False)
