"""A small, defensive ELF reader: just what the loader looks at.

pyelftools costs ~60 ms to import and ~5 ms per library; the resolver must stay in the low
milliseconds for a whole torch tree, so the dynamic section, the version-needs and the section table
are decoded here by hand. Every offset is bounds-checked: a truncated, corrupted or hostile file
raises ``ElfError`` (never anything else, never a hang).

A file on disk is read with ``pread``: its first 4 KiB (ELF and program headers), the dynamic section, and a
window around each cluster of names (3.5 reads a file on the torch tree, whose 434 MB libtorch_cpu is read
for ~3 KB); the ``mmap`` module is not loaded for it. Integers are decoded without ``struct`` (one more
extension module to load on ``why``'s path): tables in the host's byte order with ``memoryview.cast``, the
rest with ``int.from_bytes``.
"""

from __future__ import annotations

import os
import sys

from imagesmith.contract.record import record

TYPE_CHECKING = False  # mypy treats this name as True; typing and mmap are not imported at run time
if TYPE_CHECKING:
    import mmap
    from typing import Literal

    Bytes = bytes | bytearray | mmap.mmap

ELFCLASS32 = 1
ELFCLASS64 = 2
ET_EXEC = 2
ET_DYN = 3
PT_LOAD = 1
PT_DYNAMIC = 2
PT_INTERP = 3
DT_NULL = 0
DT_NEEDED = 1
DT_STRTAB = 5
DT_STRSZ = 10
DT_SONAME = 14
DT_RPATH = 15
DT_RUNPATH = 29
DT_FLAGS_1 = 0x6FFFFFFB
DT_VERDEF = 0x6FFFFFFC
DT_VERDEFNUM = 0x6FFFFFFD
DT_VERNEED = 0x6FFFFFFE
DT_VERNEEDNUM = 0x6FFFFFFF
DF_1_NODEFLIB = 0x800

MACHINE_NAMES = {3: "i386", 40: "arm", 62: "x86_64", 183: "aarch64", 21: "ppc64", 243: "riscv"}

# Loops over file-controlled counts are capped so a crafted file cannot make us spin.
_MAX_ENTRIES = 1 << 16


class ElfError(Exception):
    """The file is not a well-formed ELF object (the reason reads like glibc's)."""


@record
class ElfInfo:
    """The loader-relevant facts of one ELF file."""

    elf_class: int
    big_endian: bool
    machine: int
    osabi: int
    type: int
    soname: str | None
    needed: tuple[str, ...]
    rpath: str | None
    runpath: str | None
    nodeflib: bool
    interp: str | None

    @property
    def machine_name(self) -> str:
        return MACHINE_NAMES.get(self.machine, f"machine-{self.machine}")

    def same_target(self, other: ElfInfo) -> bool:
        """Whether glibc would accept ``other`` as a dependency of ``self`` (class and machine)."""
        return self.elf_class == other.elf_class and self.machine == other.machine


@record
class Section:
    name: str
    offset: int
    size: int


# Field widths of the records read below (struct's H, I, Q), 64-bit then 32-bit where they differ.
_EHDR = {True: (2, 2, 4, 8, 8, 8, 4, 2, 2, 2, 2, 2, 2), False: (2, 2, 4, 4, 4, 4, 4, 2, 2, 2, 2, 2, 2)}
_PHDR = {True: (4, 4, 8, 8, 8, 8, 8, 8), False: (4, 4, 4, 4, 4, 4, 4, 4)}
_SHDR = {True: (4, 4, 8, 8, 8, 8), False: (4, 4, 4, 4, 4, 4)}
_VERDEF = (2, 2, 2, 2, 4, 4, 4)
_VERDAUX = (4, 4)
_VERNEED = (2, 2, 4, 4, 4)
_VERNAUX = (4, 2, 2, 4, 4)
_WORD: dict[int, Literal["H", "I", "Q"]] = {2: "H", 4: "I", 8: "Q"}
_HEAD = 4096
# No name the loader reads (a path, a soname) comes near this; a string that runs on is refused here
# rather than searched for through a whole file.
_MAX_STRING = 1 << 16


class _Buffer:
    """An ELF file already in memory (``parse``; a mapped file)."""

    __slots__ = ("data", "size")

    def __init__(self, data: Bytes) -> None:
        self.data = data
        self.size = len(data)

    def get(self, offset: int, n: int) -> bytes:
        if offset < 0 or n < 0 or offset + n > self.size:
            raise ElfError("file too short")
        return bytes(self.data[offset : offset + n])

    def find0(self, start: int, end: int) -> int:
        return self.data.find(b"\0", start, end)


class _File:
    """An ELF file read on demand with ``pread``: its first 4 KiB (the ELF and program headers) once, then
    exactly the ranges asked for (the dynamic section, a window around each name)."""

    __slots__ = ("_head", "fd", "size")

    def __init__(self, fd: int, size: int) -> None:
        self.fd = fd
        self.size = size
        self._head = os.pread(fd, _HEAD, 0)

    def get(self, offset: int, n: int) -> bytes:
        if offset < 0 or n < 0 or offset + n > self.size:
            raise ElfError("file too short")
        if offset + n <= len(self._head):
            return self._head[offset : offset + n]
        out = os.pread(self.fd, n, offset)
        if len(out) != n:
            raise ElfError("file too short")  # it shrank since fstat
        return out

    def find0(self, start: int, end: int) -> int:
        at, step = start, 256
        while at < end:
            chunk = self.get(at, min(step, end - at))
            hit = chunk.find(b"\0")
            if hit >= 0:
                return at + hit
            at += len(chunk)
            step = min(step * 4, 1 << 16)
        return -1


class _Reader:
    """Bounds-checked little/big-endian, 32/64-bit field access over a ``_Buffer`` or a ``_File``."""

    __slots__ = ("big_endian", "is64", "native", "order", "size", "src")

    def __init__(self, src: _Buffer | _File, *, elf_class: int, big_endian: bool) -> None:
        self.src = src
        self.size = src.size
        self.is64 = elf_class == ELFCLASS64
        self.big_endian = big_endian
        self.order: Literal["big", "little"] = "big" if big_endian else "little"
        self.native = big_endian == (sys.byteorder == "big")

    def fields(self, widths: tuple[int, ...], offset: int) -> tuple[int, ...]:
        """Unsigned integers of the given widths, packed from ``offset`` (struct without padding)."""
        raw = self.src.get(offset, sum(widths))
        out = []
        at = 0
        for n in widths:
            out.append(int.from_bytes(raw[at : at + n], self.order))
            at += n
        return tuple(out)

    def words(self, offset: int, count: int, width: int) -> list[int]:
        """``count`` unsigned integers of ``width`` bytes from ``offset``: a table, decoded in C when the file
        has the host's byte order."""
        raw = self.src.get(offset, count * width)
        if self.native:
            return memoryview(raw).cast(_WORD[width]).tolist()
        return [int.from_bytes(raw[i : i + width], self.order) for i in range(0, len(raw), width)]

    def cstring(self, offset: int, limit: int) -> str:
        if offset < 0 or offset >= min(limit, self.size):
            raise ElfError("string offset out of range")
        end = self.src.find0(offset, min(limit, self.size, offset + _MAX_STRING))
        if end < 0:
            raise ElfError("unterminated string")
        return self.src.get(offset, end - offset).decode("utf-8", "surrogateescape")


def _header(src: _Buffer | _File) -> tuple[_Reader, tuple[int, ...], bytes]:
    if src.size < 16:
        raise ElfError("file too short")
    ident = src.get(0, 16)
    if ident[:4] != b"\x7fELF":
        raise ElfError("invalid ELF header")
    elf_class, endian = ident[4], ident[5]
    if elf_class not in (ELFCLASS32, ELFCLASS64) or endian not in (1, 2):
        raise ElfError("invalid ELF header")
    r = _Reader(src, elf_class=elf_class, big_endian=endian == 2)
    # e_type, e_machine, e_version, e_entry, e_phoff, e_shoff, e_flags, e_ehsize,
    # e_phentsize, e_phnum, e_shentsize, e_shnum, e_shstrndx
    return r, r.fields(_EHDR[r.is64], 16), ident


def _segments(r: _Reader, fields: tuple[int, ...]) -> list[tuple[int, int, int, int, int]]:
    """(p_type, p_offset, p_vaddr, p_filesz, p_memsz) for each program header."""
    phoff, phentsize, phnum = fields[4], fields[8], fields[9]
    if phnum == 0:
        return []
    need = 56 if r.is64 else 32
    if phentsize < need:
        raise ElfError("bad program header size")
    count = min(phnum, _MAX_ENTRIES)
    # (p_type, p_offset, p_vaddr, p_filesz, p_memsz, p_align) per header
    headers: list[tuple[int, int, int, int, int, int]] = []
    if phentsize == need and phoff + count * need <= r.size:
        # The usual layout, decoded in one C-level pass (a torch tree has ~25 files of ~10 headers).
        if r.is64:
            # Seven 8-byte words a header; the first holds p_type and p_flags in the file's byte order.
            w = r.words(phoff, count * 7, 8)
            for i in range(0, len(w), 7):
                p_type = w[i] >> 32 if r.big_endian else w[i] & 0xFFFFFFFF
                headers.append((p_type, w[i + 1], w[i + 2], w[i + 4], w[i + 5], w[i + 6]))
        else:
            w = r.words(phoff, count * 8, 4)
            for i in range(0, len(w), 8):
                headers.append((w[i], w[i + 1], w[i + 2], w[i + 4], w[i + 5], w[i + 7]))
    else:
        for i in range(count):
            h = r.fields(_PHDR[r.is64], phoff + i * phentsize)
            if r.is64:
                headers.append((h[0], h[2], h[3], h[5], h[6], h[7]))
            else:
                headers.append((h[0], h[1], h[2], h[4], h[5], h[7]))
    out = []
    for p_type, p_offset, p_vaddr, p_filesz, p_memsz, align in headers:
        if p_type == PT_LOAD and align > 1 and (p_vaddr - p_offset) % align:
            # ld.so refuses such a file before mapping anything (dl-load.c: "ELF load command address/offset not
            # properly aligned"); reading its addresses through this segment would name libraries it never loads.
            raise ElfError("ELF load command address/offset not properly aligned")
        out.append((p_type, p_offset, p_vaddr, p_filesz, p_memsz))
    return out


def _vaddr_to_offset(loads: list[tuple[int, int, int, int, int]], vaddr: int) -> int:
    for _t, p_offset, p_vaddr, p_filesz, _m in loads:
        if p_vaddr <= vaddr < p_vaddr + p_filesz:
            return p_offset + (vaddr - p_vaddr)
    raise ElfError("address not in any loadable segment")


def _dynamic(r: _Reader, segs: list[tuple[int, int, int, int, int]]) -> list[tuple[int, int]]:
    dyn = [s for s in segs if s[0] == PT_DYNAMIC]
    if not dyn:
        return []
    _t, offset, _v, filesz, _m = dyn[0]
    entsize = 16 if r.is64 else 8
    count = min(filesz // entsize, _MAX_ENTRIES)
    # The entries the file holds, in one C-level pass; running out of them before DT_NULL is the error a
    # one-by-one read would raise at that entry. Tags are read unsigned: every tag the loader knows is
    # positive, so a negative one matches none either way.
    present = max(0, min(count, (r.size - offset) // entsize))
    out: list[tuple[int, int]] = []
    if present:
        words = r.words(offset, present * 2, entsize // 2)
        for i in range(0, len(words), 2):
            if words[i] == DT_NULL:
                return out
            out.append((words[i], words[i + 1]))
    if present < count:
        raise ElfError("file too short")
    return out


# What a hostile file can make the decoding raise besides ElfError; reported as "malformed ELF".
_DECODE_ERRORS = (ValueError, OverflowError, IndexError, MemoryError, TypeError)


def parse(data: Bytes) -> ElfInfo:
    """Decode the loader-relevant facts from the bytes of an ELF file."""
    return _parse_source(_Buffer(data))


def _parse_source(src: _Buffer | _File) -> ElfInfo:
    try:
        return _parse(src)
    except ElfError:
        raise
    except _DECODE_ERRORS as exc:
        raise ElfError(f"malformed ELF: {exc}") from None


_STRING_TAGS = frozenset({DT_NEEDED, DT_SONAME, DT_RPATH, DT_RUNPATH})
_CLUSTER = 4096


def _nearby_strings(r: _Reader, offsets: list[int], base: int, limit: int) -> dict[int, str]:
    """The strings at ``base + offset`` for each offset, one read per cluster of offsets less than 4 KiB
    apart: a small library's names sit together (libshm's 12 in one read), a large one's are spread over its
    string table (libtorch_cpu's 12 take 9). An offset outside the table, or a string that runs past its
    window, is left out."""
    end = min(limit, r.size)
    todo = sorted({o for o in offsets if 0 <= base + o < end})
    out: dict[int, str] = {}
    i = 0
    while i < len(todo):
        first = last = todo[i]
        j = i + 1
        while j < len(todo) and todo[j] - first < _CLUSTER:
            last = todo[j]
            j += 1
        start = base + first
        window = r.src.get(start, min(end, base + last + 256) - start)
        for o in todo[i:j]:
            nul = window.find(b"\0", o - first)
            if nul >= 0:
                out[o] = window[o - first : nul].decode("utf-8", "surrogateescape")
        i = j
    return out


def _parse(src: _Buffer | _File) -> ElfInfo:
    r, fields, ident = _header(src)
    e_type, e_machine = fields[0], fields[1]
    segs = _segments(r, fields)
    loads = [s for s in segs if s[0] == PT_LOAD]
    interp = None
    for s in segs:
        if s[0] == PT_INTERP:
            interp = r.cstring(s[1], s[1] + s[3])
    dyn = _dynamic(r, segs)
    strtab = strsz = None
    for tag, val in dyn:
        if tag == DT_STRTAB:
            strtab = val
        elif tag == DT_STRSZ:
            strsz = val
    needed: list[str] = []
    soname = rpath = runpath = None
    nodeflib = False
    if dyn:
        if strtab is None or strsz is None:
            raise ElfError("dynamic section without a string table")
        str_off = _vaddr_to_offset(loads, strtab) if loads else strtab
        limit = str_off + strsz
        known = _nearby_strings(r, [val for tag, val in dyn if tag in _STRING_TAGS], str_off, limit)

        def string(val: int) -> str:
            # A string no window could read is read alone: that read raises the error it has.
            return known[val] if val in known else r.cstring(str_off + val, limit)

        for tag, val in dyn:
            if tag == DT_NEEDED:
                needed.append(string(val))
            elif tag == DT_SONAME:
                soname = string(val)
            elif tag == DT_RPATH:
                rpath = string(val)
            elif tag == DT_RUNPATH:
                runpath = string(val)
            elif tag == DT_FLAGS_1:
                nodeflib = bool(val & DF_1_NODEFLIB)
    return ElfInfo(
        elf_class=ident[4],
        big_endian=ident[5] == 2,
        machine=e_machine,
        osabi=ident[7],
        type=e_type,
        soname=soname,
        needed=tuple(needed),
        rpath=rpath,
        runpath=runpath,
        nodeflib=nodeflib,
        interp=interp,
    )


class MappedFile:
    """An ELF file mapped read-only, for readers of whole sections (fatbins); use as a context manager."""

    def __init__(self, path: str) -> None:
        import mmap  # an extension module `why` never needs

        self.path = path
        self._fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            size = os.fstat(self._fd).st_size
            self.data: bytes | mmap.mmap = mmap.mmap(self._fd, 0, prot=mmap.PROT_READ) if size > 0 else b""
        except (OSError, ValueError):
            os.close(self._fd)
            raise

    def __enter__(self) -> MappedFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if not isinstance(self.data, bytes):
            self.data.close()
        os.close(self._fd)


def read_elf(path: str) -> ElfInfo:
    """Read ``path``; ``OSError`` if it cannot be opened or read, ``ElfError`` if it is not valid ELF."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        size = os.fstat(fd).st_size
        if size == 0:
            raise ElfError("file too short")
        return _parse_source(_File(fd, size))
    finally:
        os.close(fd)


def sections(data: Bytes) -> list[Section]:
    """The section table (names resolved); ``ElfError`` if it is malformed."""
    try:
        r, fields, _ident = _header(_Buffer(data))
        shoff, shentsize, shnum, shstrndx = fields[5], fields[10], fields[11], fields[12]
        if shoff == 0 or shnum == 0:
            return []
        if shentsize < (64 if r.is64 else 40) or shstrndx >= shnum:
            raise ElfError("bad section header table")
        raw = []
        for i in range(min(shnum, _MAX_ENTRIES)):
            name, _t, _f, _a, s_off, s_size = r.fields(_SHDR[r.is64], shoff + i * shentsize)
            raw.append((name, s_off, s_size))
        str_off, str_size = raw[shstrndx][1], raw[shstrndx][2]
        return [
            Section(name=r.cstring(str_off + n, str_off + str_size), offset=o, size=s)
            for n, o, s in raw
            if n < str_size
        ]
    except ElfError:
        raise
    except _DECODE_ERRORS as exc:
        raise ElfError(f"malformed ELF: {exc}") from None


def version_needs(data: Bytes) -> dict[str, tuple[str, ...]]:
    """DT_VERNEED: for each needed file, the symbol versions required from it (``GLIBC_2.28``…)."""
    try:
        return _versions(data, want_defs=False)
    except ElfError:
        raise
    except _DECODE_ERRORS as exc:
        raise ElfError(f"malformed ELF: {exc}") from None


def version_defs(data: Bytes) -> tuple[str, ...]:
    """DT_VERDEF: the symbol versions this object defines (libc.so.6 defines ``GLIBC_2.36``…)."""
    try:
        return _versions(data, want_defs=True).get("", ())
    except ElfError:
        raise
    except _DECODE_ERRORS as exc:
        raise ElfError(f"malformed ELF: {exc}") from None


def glibc_version(tag: str) -> tuple[int, ...] | None:
    """``GLIBC_2.34`` or ``2.34`` -> (2, 34); None for another tag (``GLIBC_PRIVATE``, ``GCC_3.0``). glibc
    numbers its symbol versions in its own scheme, not NVIDIA's: this is the one place that reads it."""
    text = tag.removeprefix("GLIBC_")
    if text == tag and tag[:1].isalpha():
        return None
    parts = text.split(".")
    return tuple(int(p) for p in parts) if all(p.isdigit() for p in parts) else None


def _versions(data: Bytes, *, want_defs: bool) -> dict[str, tuple[str, ...]]:
    r, fields, _ident = _header(_Buffer(data))
    segs = _segments(r, fields)
    loads = [s for s in segs if s[0] == PT_LOAD]
    dyn = dict(_dynamic(r, segs))
    if DT_STRTAB not in dyn or DT_STRSZ not in dyn:
        return {}
    str_off = _vaddr_to_offset(loads, dyn[DT_STRTAB]) if loads else dyn[DT_STRTAB]
    limit = str_off + dyn[DT_STRSZ]
    out: dict[str, tuple[str, ...]] = {}
    if want_defs:
        if DT_VERDEF not in dyn:
            return {}
        off = _vaddr_to_offset(loads, dyn[DT_VERDEF]) if loads else dyn[DT_VERDEF]
        names: list[str] = []
        for _ in range(min(dyn.get(DT_VERDEFNUM, 0), _MAX_ENTRIES)):
            # Verdef: vd_version, vd_flags, vd_ndx, vd_cnt, vd_hash, vd_aux, vd_next
            _v, flags, _ndx, cnt, _h, aux, nxt = r.fields(_VERDEF, off)
            if cnt and not flags & 0x1:  # VER_FLG_BASE names the file itself, not a version it defines
                vda_name, _vda_next = r.fields(_VERDAUX, off + aux)
                names.append(r.cstring(str_off + vda_name, limit))
            if nxt == 0:
                break
            off += nxt
        out[""] = tuple(names)
        return out
    if DT_VERNEED not in dyn:
        return {}
    off = _vaddr_to_offset(loads, dyn[DT_VERNEED]) if loads else dyn[DT_VERNEED]
    for _ in range(min(dyn.get(DT_VERNEEDNUM, 0), _MAX_ENTRIES)):
        # Verneed: vn_version, vn_cnt, vn_file, vn_aux, vn_next
        _v, cnt, vn_file, aux, nxt = r.fields(_VERNEED, off)
        lib = r.cstring(str_off + vn_file, limit)
        versions: list[str] = []
        a = off + aux
        for _j in range(min(cnt, _MAX_ENTRIES)):
            # Vernaux: vna_hash, vna_flags, vna_other, vna_name, vna_next
            _h, _fl, _o, vna_name, vna_next = r.fields(_VERNAUX, a)
            versions.append(r.cstring(str_off + vna_name, limit))
            if vna_next == 0:
                break
            a += vna_next
        out[lib] = tuple(versions)
        if nxt == 0:
            break
        off += nxt
    return out
