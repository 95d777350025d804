"""The doctor's JSON output without the json package (see ``dumps``)."""

from __future__ import annotations

from _json import encode_basestring_ascii as quote


def dumps(document: object, level: int = 0) -> str:
    """``json.dumps(document, indent=2)``, byte for byte, for the documents the doctor prints.

    The json package imports ``re`` and its scanner (~5 ms of ``doctor why``'s 40 ms budget); the escaping is
    the same C function json itself uses.
    """
    if isinstance(document, str):
        return quote(document)
    if document is None:
        return "null"
    if isinstance(document, bool):
        return "true" if document else "false"
    if isinstance(document, int):
        return int.__repr__(document)
    if isinstance(document, float):
        if document != document:
            return "NaN"
        if document in (float("inf"), float("-inf")):
            return "Infinity" if document > 0 else "-Infinity"
        return float.__repr__(document)
    inner = "\n" + "  " * (level + 1)
    if isinstance(document, (list, tuple)):
        if not document:
            return "[]"
        items = [dumps(v, level + 1) for v in document]
        return "[" + inner + ("," + inner).join(items) + "\n" + "  " * level + "]"
    if isinstance(document, dict):
        if not document:
            return "{}"
        pairs = [f"{quote(str(k))}: {dumps(v, level + 1)}" for k, v in document.items()]
        return "{" + inner + ("," + inner).join(pairs) + "\n" + "  " * level + "}"
    raise TypeError(f"not JSON serializable here: {type(document).__name__}")
