"""The architecture list carried by ``io.imagesmith.sm``: ``sm_80,sm_90,compute_90`` (SASS, then PTX)."""

from __future__ import annotations

from collections.abc import Iterable

NONE = "none"


def format_sm(sass: Iterable[str], ptx: Iterable[str] = ()) -> str:
    """``sass`` as ``sm_XY`` names and ``ptx`` as ``compute_XY`` names, comma-joined; "" for none."""
    return ",".join([*sass, *ptx])


def parse_sm(text: str | None) -> tuple[str, ...]:
    """The items of a list written by ``format_sm`` (``none``, "" and None mean no items).

    Hand-written labels are read too: items separated by commas, semicolons or spaces, and written the
    way TORCH_CUDA_ARCH_LIST writes them (``8.0``, ``8.6+PTX``).
    """
    if not text or text.strip() == NONE:
        return ()
    return tuple(item for item in text.replace(";", " ").replace(",", " ").split() if item)


def _ptx_suffixed(item: str) -> bool:
    return item.upper().endswith("+PTX")


def sass_of(items: Iterable[str]) -> tuple[str, ...]:
    """The SASS targets: every item but ``compute_XY`` (``8.6+PTX`` carries SASS for 8.6 too)."""
    return tuple(i[:-4] if _ptx_suffixed(i) else i for i in items if not i.startswith("compute_"))


def ptx_of(items: Iterable[str]) -> tuple[str, ...]:
    """The PTX targets: ``compute_XY`` items and ``X.Y+PTX`` ones (as ``X.Y``)."""
    return tuple(
        i[:-4] if _ptx_suffixed(i) else i for i in items if i.startswith("compute_") or _ptx_suffixed(i)
    )
