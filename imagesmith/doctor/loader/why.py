"""``imagesmith doctor why FILE``: the resolved tree as JSON and as text."""

from __future__ import annotations

from imagesmith.doctor.loader.resolver import Resolver

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
