"""The architecture list carried by ``io.imagesmith.sm``: ``sm_80,sm_90,compute_90`` (SASS, then PTX)."""

from __future__ import annotations

from collections.abc import Iterable

NONE = "none"


def format_sm(sass: Iterable[str], ptx: Iterable[str] = ()) -> str:
    """``sass`` as ``sm_XY`` names and ``ptx`` as ``compute_XY`` names, comma-joined; "" for none."""
    return ",".join([*sass, *ptx])


def parse_sm(text: str | None) -> tuple[str, ...]:
    """The items of a list written by ``format_sm`` (``none``, "" and None mean no items)."""
    if not text or text.strip() == NONE:
        return ()
    return tuple(item.strip() for item in text.split(",") if item.strip())


def sass_of(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(i for i in items if i.startswith("sm_"))


def ptx_of(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(i for i in items if i.startswith("compute_"))
