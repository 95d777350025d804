"""The pure scheduling core: which images may start now, and who is skipped when one fails.

No threads and no Docker here, so the ordering rules are tested on their own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from imagesmith.errors import UnknownName


def suggest(name: str, names: Iterable[str], n: int = 3) -> list[str]:
    """Closest known names; image names are long, so a near-match of the prefix counts too."""
    from difflib import SequenceMatcher

    def score(candidate: str) -> float:
        whole = SequenceMatcher(None, name, candidate).ratio()
        prefix = SequenceMatcher(None, name, candidate[: len(name)]).ratio()
        return max(whole, prefix)

    scored = sorted(((score(c), c) for c in names), key=lambda p: (-p[0], p[1]))
    return [candidate for value, candidate in scored[:n] if value >= 0.6]


def select(
    parents: Mapping[str, str | None],
    wanted: Iterable[str],
    *,
    where: str = "IMAGE",
    ancestors: bool = True,
) -> tuple[str, ...]:
    """The wanted images plus (unless ``ancestors=False``) their ancestors, in parents-first order.

    ``parents`` maps every planned image to its parent, in plan order. An empty ``wanted`` means all.
    """
    names = list(parents)
    wanted = list(wanted)
    if not wanted:
        return tuple(names)
    chosen: set[str] = set()
    for name in wanted:
        if name not in parents:
            raise UnknownName("image", name, suggest(name, names), where=where)
        current: str | None = name
        while current is not None and current not in chosen:
            chosen.add(current)
            current = parents[current] if ancestors else None
    return tuple(n for n in names if n in chosen)


@dataclass
class Schedule:
    """Tracks states of a parents-first build; ``ready()`` hands out images whose parent is done."""

    parents: dict[str, str | None]
    pending: list[str] = field(default_factory=list)
    running: set[str] = field(default_factory=set)
    done: set[str] = field(default_factory=set)
    failed: set[str] = field(default_factory=set)
    skipped: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, parents: Mapping[str, str | None], order: Iterable[str]) -> Schedule:
        order = list(order)
        # A parent outside the selection (built earlier, or not wanted) is treated as available.
        return cls(
            parents={n: (parents[n] if parents[n] in order else None) for n in order},
            pending=order,
        )

    def ready(self, limit: int) -> list[str]:
        """Images to start now (at most ``limit`` more than are running), marked running."""
        started: list[str] = []
        for name in list(self.pending):
            if len(self.running) >= limit:
                break
            parent = self.parents[name]
            if parent is None or parent in self.done:
                self.pending.remove(name)
                self.running.add(name)
                started.append(name)
        return started

    def finish(self, name: str, *, ok: bool) -> list[str]:
        """Record a result; on failure every pending descendant is skipped and returned."""
        self.running.discard(name)
        if ok:
            self.done.add(name)
            return []
        self.failed.add(name)
        newly: list[str] = []
        broken = {name}
        for candidate in list(self.pending):  # pending keeps plan order, so parents come first
            parent = self.parents[candidate]
            if parent in broken:
                broken.add(candidate)
                self.pending.remove(candidate)
                self.skipped[candidate] = name
                newly.append(candidate)
        return newly

    @property
    def finished(self) -> bool:
        return not self.pending and not self.running
