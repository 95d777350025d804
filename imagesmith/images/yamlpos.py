"""YAML loading that remembers where every value came from, so errors can name file:line."""

from __future__ import annotations

import os

from imagesmith import parsecache
from imagesmith.contract.record import record
from imagesmith.errors import DataError

TYPE_CHECKING = False  # mypy treats this name as True; typing costs ~10 ms to import
if TYPE_CHECKING:
    from typing import Any

    import yaml

PathKey = tuple[str | int, ...]


@record
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


def _convert(
    node: yaml.Node, path: PathKey, lines: dict[PathKey, int], file: str, scalars: yaml.SafeLoader
) -> Any:
    import yaml

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
            out[key] = _convert(value_node, (*path, key), lines, file, scalars)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_convert(item, (*path, i), lines, file, scalars) for i, item in enumerate(node.value)]
    # Scalars: the safe constructor applies YAML's own typing rules (ints, bools, nulls).
    return scalars.construct_object(node, deep=True)


def _parse(text: str, file: str) -> tuple[Any, dict[PathKey, int]]:
    import yaml

    # libyaml's parser when PyYAML has it (the marks, hence the lines, are the same).
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        root = yaml.compose(text, Loader=loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{file}:{mark.line + 1}" if mark else file
        raise DataError(f"invalid YAML: {exc.problem or exc}", where=where) from None
    lines: dict[PathKey, int] = {}
    data = _convert(root, (), lines, file, yaml.SafeLoader("")) if root is not None else None
    return data, lines


def load_text(text: str, file: str) -> Located:
    """The document with its lines; parsed once per content (``parsecache``): PyYAML is not imported when
    the same policy was read before."""
    data, lines = parsecache.cached(
        text.encode("utf-8"), "yaml", lambda raw: _parse(raw.decode("utf-8"), file)
    )
    return Located(file=file, data=data, lines=lines)


def load_file(path: str | os.PathLike[str]) -> Located:
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise DataError(f"cannot read: {exc.strerror}", where=os.fspath(path)) from None
    except UnicodeDecodeError:
        raise DataError("not UTF-8 text", where=os.fspath(path)) from None
    return load_text(text, os.fspath(path))
