"""Instance catalog (generated from the providers' price files, shipped, offline) and the picker.

``from imagesmith.picker import pick`` is all the templates need; everything else loads on first use.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing costs ~10 ms to import; mypy treats this name as True
if TYPE_CHECKING:
    from typing import Any

    from imagesmith.picker.api import pick
    from imagesmith.picker.model import InstanceRow
    from imagesmith.picker.request import PickRequest
    from imagesmith.picker.result import PickResult

__all__ = ["InstanceRow", "PickRequest", "PickResult", "pick"]

_LAZY = {
    "pick": ("imagesmith.picker.api", "pick"),
    "PickResult": ("imagesmith.picker.result", "PickResult"),
    "PickRequest": ("imagesmith.picker.request", "PickRequest"),
    "InstanceRow": ("imagesmith.picker.model", "InstanceRow"),
}


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'imagesmith.picker' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(target[0]), target[1])
