"""A parse, cached on disk under the content's CRC-32 and length, in ``marshal`` form.

The knowledge files (TOML) and policies (YAML) are parsed by pure-Python or heavy modules (tomllib ~16 ms
to import and ~20 ms to parse them all; PyYAML ~12 ms to import): the verdict and planning paths read the
parse back instead, with only built-in modules (``marshal``, ``zlib``). The source bytes ride along in the
cache file, so a CRC collision can never serve another file's parse; a stale, foreign or unreadable cache
file is simply parsed again, and a read-only home only costs speed. Values ``marshal`` cannot hold (a YAML
timestamp) are not cached. Standard library only: the doctor loads the knowledge through this.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # mypy treats this name as True; typing costs ~10 ms to import
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import TypeVar

    T = TypeVar("T")


def cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "imagesmith", "parse")


def cached(data: bytes, kind: str, parse: Callable[[bytes], T]) -> T:
    """``parse(data)``, or what it returned the last time it saw these bytes for this ``kind``."""
    import marshal
    import zlib

    path = os.path.join(cache_dir(), f"{kind}-{zlib.crc32(data):08x}-{len(data)}.marshal")
    try:
        with open(path, "rb") as fh:
            stored = marshal.loads(fh.read())  # one read: marshal.load(file) reads piecemeal, ~3x slower
        if isinstance(stored, tuple) and len(stored) == 2 and stored[0] == data:
            value: T = stored[1]
            return value
    except (OSError, EOFError, ValueError, TypeError):
        pass
    value = parse(data)
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "wb") as fh:
            marshal.dump((data, value), fh)  # type: ignore[arg-type]  # ValueError if not marshallable
        os.replace(tmp, path)
        _prune(os.path.dirname(path), f"{kind}-")
    except (OSError, ValueError):
        pass
    return value


KEEP = 16  # versions kept per kind: edits to a data file or a policy leave their old parses behind


def _prune(directory: str, prefix: str) -> None:
    """Drop the oldest cached parses of one kind beyond ``KEEP`` (only after a miss wrote a new one)."""
    import contextlib

    entries = []
    with os.scandir(directory) as it:
        for entry in it:
            if entry.name.startswith(prefix) and entry.name.endswith(".marshal"):
                entries.append((entry.stat().st_mtime_ns, entry.path))
    for _, stale in sorted(entries)[:-KEEP]:
        with contextlib.suppress(OSError):
            os.remove(stale)
