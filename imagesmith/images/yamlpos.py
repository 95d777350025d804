"""YAML loading that remembers where every value came from, so errors can name file:line."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from imagesmith.errors import DataError

PathKey = tuple[str | int, ...]


@dataclass(frozen=True, kw_only=True)
class Located:
    """Plain Python data plus the line of every mapping key and sequence item (1-based)."""

    file: str
    data: Any
    lines: dict[PathKey, int]

    def where(self, *path: str | int) -> str:
        # Walk up to the nearest recorded ancestor: a missing key is reported at its parent.
        key: PathKey = tuple(path)
        while key and key not in self.lines:
            key = key[:-1]
        line = self.lines.get(key)
        return f"{self.file}:{line}" if line else self.file


def _convert(node: yaml.Node, path: PathKey, lines: dict[PathKey, int], file: str) -> Any:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key, str):
                raise DataError(
                    f"keys must be strings, got {key!r}", where=f"{file}:{key_node.start_mark.line + 1}"
                )
            if key in out:
                raise DataError(f"duplicate key {key!r}", where=f"{file}:{key_node.start_mark.line + 1}")
            lines[(*path, key)] = key_node.start_mark.line + 1
            out[key] = _convert(value_node, (*path, key), lines, file)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_convert(item, (*path, i), lines, file) for i, item in enumerate(node.value)]
    # Scalars: the safe constructor applies YAML's own typing rules (ints, bools, nulls).
    return yaml.constructor.SafeConstructor().construct_object(node, deep=True)


def load_text(text: str, file: str) -> Located:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{file}:{mark.line + 1}" if mark else file
        raise DataError(f"invalid YAML: {exc.problem or exc}", where=where) from None
    lines: dict[PathKey, int] = {}
    data = _convert(root, (), lines, file) if root is not None else None
    return Located(file=file, data=data, lines=lines)


def load_file(path: Path) -> Located:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DataError(f"cannot read: {exc.strerror}", where=str(path)) from None
    return load_text(text, str(path))
