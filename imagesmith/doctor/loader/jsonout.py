"""The doctor's JSON output without the json package (see ``dumps``)."""

from __future__ import annotations

# json's ASCII escaping (``encode_basestring_ascii``): the short forms, then \u00XX for the other control
# characters and DEL. Written out rather than imported: ``_json`` is an extension module (~0.1 ms to load).
_ASCII_ESCAPES = {
    **{c: f"\\u{c:04x}" for c in (*range(0x20), 0x7F)},
    **{ord(k): v for k, v in {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t",
                              "\b": "\\b", "\f": "\\f"}.items()},
}  # fmt: skip


def quote(text: str) -> str:
    """``json.dumps(text)`` (ensure_ascii): non-ASCII as ``\\uXXXX``, beyond the BMP as a surrogate pair."""
    if text.isascii():
        if text.isprintable() and '"' not in text and "\\" not in text:
            return f'"{text}"'  # the usual path or file name: nothing to escape
        return f'"{text.translate(_ASCII_ESCAPES)}"'
    return '"' + "".join(_escape(ch) for ch in text) + '"'


def _escape(ch: str) -> str:
    code = ord(ch)
    if code < 0x80:
        return ch.translate(_ASCII_ESCAPES)
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 | code >> 10:04x}\\u{0xDC00 | code & 0x3FF:04x}"


def dumps(document: object, level: int = 0) -> str:
    """``json.dumps(document, indent=2)``, byte for byte, for the documents the doctor prints.

    The json package imports ``re`` and its scanner (~5 ms of ``doctor why``'s 40 ms budget); the escaping is
    json's own, written out in ``quote``.
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
        # Strings (most values: paths, names) are quoted here rather than through a call per value.
        items = [quote(v) if type(v) is str else dumps(v, level + 1) for v in document]
        return "[" + inner + ("," + inner).join(items) + "\n" + "  " * level + "]"
    if isinstance(document, dict):
        if not document:
            return "{}"
        pairs = [
            f"{quote(str(k))}: {quote(v) if type(v) is str else dumps(v, level + 1)}"
            for k, v in document.items()
        ]
        return "{" + inner + ("," + inner).join(pairs) + "\n" + "  " * level + "}"
    raise TypeError(f"not JSON serializable here: {type(document).__name__}")
