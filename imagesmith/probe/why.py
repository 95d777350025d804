"""``imagesmith doctor why FILE``: the resolved tree as JSON and as text."""

from __future__ import annotations

from imagesmith.probe.resolver import Resolver

SCHEMA = 1


def to_json(resolver: Resolver, root_path: str) -> dict[str, object]:
    return {
        "schema": SCHEMA,
        "root": root_path,
        "fs_root": resolver.config.root,
        "libraries": [e.to_json() for e in resolver.edges],
    }


def to_text(resolver: Resolver, root_path: str) -> str:
    lines = [root_path]
    children: dict[str | None, list[int]] = {}
    for i, e in enumerate(resolver.edges):
        children.setdefault(e.needed_by, []).append(i)
    printed: set[str] = set()

    def walk(parent: str, depth: int) -> None:
        for i in children.get(parent, []):
            e = resolver.edges[i]
            label = {"dlopen": " [dlopen]", "preload": " [preload]"}.get(e.kind, "")
            target = e.path or "not found"
            extra = ""
            if e.shadowed:
                extra = f"  (shadows {', '.join(e.shadowed)})"
            if e.error and e.via != "not_found":
                extra += f"  ERROR {e.error}"
            lines.append(f"{'    ' * depth}{e.name} => {target} [{e.via}]{label}{extra}")
            if e.path and e.via != "already_loaded" and e.path not in printed:
                printed.add(e.path)
                walk(e.path, depth + 1)

    printed.add(root_path)
    walk(root_path, 1)
    return "\n".join(lines)


def dumps(document: object, level: int = 0) -> str:
    """``json.dumps(document, indent=2)``, byte for byte, for the str/int/bool/None/list/dict documents here.

    The json package imports ``re`` and its scanner (~5 ms of ``why``'s 40 ms budget); the escaping is
    the same C function json itself uses.
    """
    from _json import encode_basestring_ascii as quote

    if isinstance(document, str):
        return quote(document)
    if document is None:
        return "null"
    if isinstance(document, bool):
        return "true" if document else "false"
    if isinstance(document, int):
        return int.__repr__(document)
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
