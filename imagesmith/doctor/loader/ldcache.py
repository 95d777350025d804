"""Parse ``/etc/ld.so.cache`` in all three layouts glibc reads (old, new, old+new "compat").

The cache is the image's own snapshot, taken when ``ldconfig`` last ran; it is never re-derived from
``ld.so.conf`` because a stale cache is itself a failure mode. Layout: glibc ``dl-cache.h``. Integers are
decoded without ``struct`` (an extension module ``why`` would load for this alone): ``_u32s``.
"""

from __future__ import annotations

import sys

from imagesmith.contract.record import record

TYPE_CHECKING = False  # mypy treats this name as True; typing is not imported at run time
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence
    from typing import TypeVar

    T = TypeVar("T")

OLD_MAGIC = b"ld.so-1.7.0"
NEW_MAGIC = b"glibc-ld.so.cache1.1"
EXTENSION_MAGIC = 0xEAA42174
FLAG_ELF_LIBC6 = 0x0003
# Entry flags glibc accepts for a 64-bit library, by machine (dl-cache.h _DL_CACHE_DEFAULT_ID).
DEFAULT_FLAGS = {"x86_64": 0x0303, "aarch64": 0x0A03, "ppc64le": 0x0503, "riscv64": 0x1003}
_HWCAPS_MARKER = (1 << 62) >> 32
_MAX_LIBS = 1 << 20
_NATIVE_BIG = sys.byteorder == "big"


def _u32s(data: bytes, offset: int, count: int, *, big_endian: bool = False) -> tuple[int, ...]:
    """``count`` unsigned 32-bit integers at ``offset`` (``struct.unpack_from(f"<{count}I")``); the table of
    ~1,000 entries is decoded in C when the file has the host's byte order."""
    if offset < 0 or count < 0 or offset + 4 * count > len(data):
        raise CacheError("file too short")
    raw = data[offset : offset + 4 * count]
    if big_endian == _NATIVE_BIG:
        return tuple(memoryview(raw).cast("I"))
    return tuple(
        int.from_bytes(raw[i : i + 4], "big" if big_endian else "little") for i in range(0, len(raw), 4)
    )


class CacheError(Exception):
    """The cache file is malformed."""


@record
class CacheEntry:
    key: str
    value: str
    flags: int
    hwcaps_subdir: str | None
    legacy_hwcap: bool


@record
class LdCache:
    format: str
    entries: tuple[CacheEntry, ...]
    generator: str | None

    def lookup(self, name: str, *, default_flags: int, active_hwcaps: tuple[str, ...]) -> tuple[str, ...]:
        """Candidate paths for ``name`` in glibc's precedence: best glibc-hwcaps entry, then plain.

        Duplicate names keep the cache's order, which is the precedence order ``ldconfig`` wrote.
        """
        return choose(
            ((e.value, e.flags, e.hwcaps_subdir, e.legacy_hwcap) for e in self.entries if e.key == name),
            default_flags=default_flags,
            active_hwcaps=active_hwcaps,
        )


def choose(
    entries: Iterable[tuple[str, int, str | None, bool]],
    *,
    default_flags: int,
    active_hwcaps: tuple[str, ...],
) -> tuple[str, ...]:
    """glibc's pick among one name's entries (path, flags, glibc-hwcaps subdir, legacy hwcap), in cache
    order: the best active glibc-hwcaps entry, then the plain ones; legacy-hwcap entries never."""
    best: tuple[int, str] | None = None
    plain: list[str] = []
    for path, flags, sub, legacy in entries:
        if flags not in (1, default_flags):
            continue
        if sub is not None:
            if sub in active_hwcaps:
                prio = active_hwcaps.index(sub)
                if best is None or prio < best[0]:
                    best = (prio, path)
        elif not legacy:
            plain.append(path)
    return ((best[1],) if best else ()) + tuple(plain)


# (key, absolute offset of the value string, flags, glibc-hwcaps subdir, legacy hwcap): values are
# decoded only for the names the resolver asks about (a cache holds ~1,000 entries, `why` needs ~15).
Row = tuple[str, int, int, "str | None", bool]


def parse(data: bytes) -> LdCache:
    """Every entry, decoded; ``CacheError`` if the file is malformed."""
    fmt, generator, rows = scan(data)
    try:
        entries = tuple(
            CacheEntry(key=key, value=_cstr(data, value), flags=flags, hwcaps_subdir=sub, legacy_hwcap=legacy)
            for key, value, flags, sub, legacy in rows
        )
    except UnicodeDecodeError as exc:
        raise CacheError(f"malformed ld.so.cache: {exc}") from None
    return LdCache(format=fmt, entries=entries, generator=generator)


def scan(data: bytes) -> tuple[str, str | None, list[Row]]:
    """(format, generator, rows) with keys decoded and values left as offsets."""
    try:
        return _scan(data)
    except CacheError:
        raise
    except (ValueError, IndexError, UnicodeDecodeError) as exc:
        raise CacheError(f"malformed ld.so.cache: {exc}") from None


def _cstr(data: bytes, offset: int) -> str:
    if not 0 <= offset < len(data):
        raise CacheError("string offset out of range")
    end = data.find(b"\0", offset)
    if end < 0:
        raise CacheError("unterminated string")
    return data[offset:end].decode("utf-8", "surrogateescape")


def _scan(data: bytes) -> tuple[str, str | None, list[Row]]:
    if data.startswith(OLD_MAGIC):
        (nlibs,) = _u32s(data, 12, 1)
        if nlibs > _MAX_LIBS:
            raise CacheError("implausible entry count")
        table = 16 + nlibs * 12
        new_at = (table + 7) & ~7
        if data[new_at : new_at + len(NEW_MAGIC)] == NEW_MAGIC:
            return _scan_new(data, new_at, fmt="compat")
        rows: list[Row] = []
        for i in range(nlibs):
            flags, key, value = _u32s(data, 16 + i * 12, 3)
            flags -= (flags & 0x80000000) << 1  # a signed int in the old format
            rows.append((_cstr(data, table + key), _checked(data, table + value), flags, None, False))
        return "old", None, rows
    if data.startswith(NEW_MAGIC):
        return _scan_new(data, 0, fmt="new")
    raise CacheError("unknown ld.so.cache format")


def _checked(data: bytes, offset: int) -> int:
    if not 0 <= offset < len(data):
        raise CacheError("string offset out of range")
    return offset


def _scan_new(data: bytes, base: int, *, fmt: str) -> tuple[str, str | None, list[Row]]:
    table = _table_new(data, base)
    return fmt, table.generator, _new_rows(data, table)


class NewTable:
    """The entry table of a new-format cache as 32-bit words, six an entry (flags, key, value, osversion,
    hwcap as two words), in the file's byte order already; string offsets are relative to ``base``."""

    __slots__ = ("base", "big_endian", "generator", "hwcaps_names", "words")

    def __init__(
        self,
        base: int,
        words: Sequence[int],
        hwcaps_names: list[str],
        generator: str | None,
        big_endian: bool,
    ) -> None:
        self.base, self.words, self.hwcaps_names = base, words, hwcaps_names
        self.generator, self.big_endian = generator, big_endian

    def row(self, data: bytes, i: int, key: str) -> Row:
        eflags, _key, value, _osv, w0, w1 = self.words[6 * i : 6 * i + 6]
        hi, lo = (w0, w1) if self.big_endian else (w1, w0)
        sub = None
        legacy = False
        if hi or lo:
            if (hi & ~0x3FF) == _HWCAPS_MARKER:
                sub = self.hwcaps_names[lo] if lo < len(self.hwcaps_names) else f"#{lo}"
            else:
                legacy = True
        signed = eflags - (1 << 32) if eflags & 0x80000000 else eflags
        return (key, self.base + value, signed, sub, legacy)


def _table_new(data: bytes, base: int) -> NewTable:
    # nlibs, len_strings, flags (one byte, three of padding), extension_offset
    endian = data[base + 28] & 3
    big = endian == 3
    nlibs, _len_strings, _flags, ext_offset = _u32s(data, base + 20, 4, big_endian=big)
    if nlibs > _MAX_LIBS:
        raise CacheError("implausible entry count")
    # Strings in the new format are relative to the start of the new header (dl-cache.c).
    hwcaps_names: list[str] = []
    generator = None
    if ext_offset and ext_offset + 8 <= len(data):
        magic, count = _u32s(data, ext_offset, 2, big_endian=big)
        if magic == EXTENSION_MAGIC:
            for i in range(min(count, 64)):
                tag, _fl, off, size = _u32s(data, ext_offset + 8 + i * 16, 4, big_endian=big)
                if tag == 0:
                    generator = data[off : off + size].decode("utf-8", "replace")
                elif tag == 1:
                    idx = _u32s(data, off, size // 4, big_endian=big)
                    hwcaps_names = [_cstr(data, base + j) for j in idx]
    if len(data) < base + 48 + nlibs * 24:
        raise CacheError("entry table runs past the end of the file")
    # One C-level pass over the table; `why` has 40 ms for everything.
    words = _u32s(data, base + 48, nlibs * 6, big_endian=big)
    if nlibs:
        # What decoding every entry would check, in two C-level passes: each value offset lies in the
        # file, and the key furthest in has its terminator (so every other key has one too).
        if base + max(words[2::6]) >= len(data):
            raise CacheError("string offset out of range")
        _cstr(data, base + max(words[1::6]))
    return NewTable(base, words, hwcaps_names, generator, big_endian=big)


def _new_rows(data: bytes, table: NewTable) -> list[Row]:
    words, base = table.words, table.base
    return [table.row(data, i, _cstr(data, base + words[6 * i + 1])) for i in range(len(words) // 6)]


class CacheIndex:
    """The cache grouped by key; each name's entries are decoded when it is first looked up."""

    def __init__(self, data: bytes, rows: list[Row]) -> None:
        self._data = data
        self._groups: dict[str, list[Row]] = {}
        for row in rows:
            self._groups.setdefault(row[0], []).append(row)

    def keys(self) -> tuple[str, ...]:
        return tuple(self._groups)

    def rows(self, name: str) -> list[Row]:
        return self._groups.get(name, [])

    def lookup(self, name: str, *, default_flags: int, active_hwcaps: tuple[str, ...]) -> tuple[str, ...]:
        entries = []
        for _key, value, flags, sub, legacy in self.rows(name):
            try:
                entries.append((_cstr(self._data, value), flags, sub, legacy))
            except CacheError:
                continue  # one unterminated value string: glibc would fail that entry, not the cache
        return choose(entries, default_flags=default_flags, active_hwcaps=active_hwcaps)


class LazyIndex(CacheIndex):
    """A new-format (or compat) cache looked up by name without decoding the ~1,000 entries `why` never asks
    about: a name's entries are those whose key offset is where ``name\\0`` occurs in the file (found with
    ``bytes.find`` and ``tuple.index``, both in C). Same answers, in the same order, as ``CacheIndex``."""

    def __init__(self, data: bytes, table: NewTable) -> None:
        super().__init__(data, [])
        self._table = table
        self._keys = tuple(table.words[1::6])
        # No key string starts before the first one: the ~14 KB of entry table ahead of the strings is not
        # searched for every name (a name the cache lacks is searched for to the end).
        self._first_key = table.base + min(self._keys, default=0)
        self._all: CacheIndex | None = None

    def keys(self) -> tuple[str, ...]:
        if self._all is None:
            self._all = CacheIndex(self._data, _new_rows(self._data, self._table))
        return self._all.keys()

    def rows(self, name: str) -> list[Row]:
        data, base, keys = self._data, self._table.base, self._keys
        needle = name.encode("utf-8", "surrogateescape") + b"\0"
        found: list[int] = []
        at = data.find(needle, self._first_key)
        while at >= 0:
            rel = at - base
            i = _index(keys, rel, 0)
            while i >= 0:
                found.append(i)
                i = _index(keys, rel, i + 1)
            at = data.find(needle, at + 1)
        return [self._table.row(data, i, name) for i in sorted(found)]


def _index(values: tuple[int, ...], value: int, start: int) -> int:
    """Where ``value`` next occurs in ``values`` from ``start``; -1 if nowhere."""
    try:
        return values.index(value, start)
    except ValueError:
        return -1


def load(path: str) -> LdCache | None:
    """The cache at ``path``; ``None`` if absent, unreadable or malformed (glibc then skips the cache step)."""
    return _load(path, parse)


def load_index(path: str) -> CacheIndex | None:
    """Like ``load``, grouped by key and decoded lazily (what the resolver uses)."""
    return _load(path, _index_of)


def _index_of(data: bytes) -> CacheIndex:
    try:
        if data.startswith(NEW_MAGIC):
            return LazyIndex(data, _table_new(data, 0))
        if data.startswith(OLD_MAGIC):
            (nlibs,) = _u32s(data, 12, 1)
            new_at = (16 + nlibs * 12 + 7) & ~7
            if nlibs <= _MAX_LIBS and data[new_at : new_at + len(NEW_MAGIC)] == NEW_MAGIC:
                return LazyIndex(data, _table_new(data, new_at))  # compat: glibc reads the new part
    except (ValueError, IndexError) as exc:
        raise CacheError(f"malformed ld.so.cache: {exc}") from None
    return CacheIndex(data, scan(data)[2])


def _load(path: str, build: Callable[[bytes], T]) -> T | None:
    try:
        with open(path, "rb") as f:
            data = f.read(64 << 20)
        return build(data)
    except (OSError, CacheError):
        return None
