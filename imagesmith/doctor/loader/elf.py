"""A small, defensive ELF reader: just what the loader looks at, read with ``struct``.

pyelftools costs ~60 ms to import and ~5 ms per library; the resolver must stay in the low
milliseconds for a whole torch tree, so the dynamic section, the version-needs and the section table
are decoded here by hand. Every offset is bounds-checked: a truncated, corrupted or hostile file
raises ``ElfError`` (never anything else, never a hang).
"""

from __future__ import annotations

import mmap
import os
import struct

from imagesmith.contract.record import record

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


class _Reader:
    """Bounds-checked little/big-endian, 32/64-bit field access over a bytes-like buffer."""

    def __init__(self, data: bytes | mmap.mmap, *, elf_class: int, big_endian: bool) -> None:
        self.data = data
        self.size = len(data)
        self.is64 = elf_class == ELFCLASS64
        self.e = ">" if big_endian else "<"

    def unpack(self, fmt: str, offset: int) -> tuple[int, ...]:
        full = self.e + fmt
        if offset < 0 or offset + struct.calcsize(full) > self.size:
            raise ElfError("file too short")
        return struct.unpack_from(full, self.data, offset)

    def cstring(self, offset: int, limit: int) -> str:
        if offset < 0 or offset >= min(limit, self.size):
            raise ElfError("string offset out of range")
        end = self.data.find(b"\0", offset, min(limit, self.size))
        if end < 0:
            raise ElfError("unterminated string")
        return bytes(self.data[offset:end]).decode("utf-8", "surrogateescape")


def _header(data: bytes | mmap.mmap) -> tuple[_Reader, tuple[int, ...]]:
    if len(data) < 16:
        raise ElfError("file too short")
    if bytes(data[:4]) != b"\x7fELF":
        raise ElfError("invalid ELF header")
    elf_class, endian = data[4], data[5]
    if elf_class not in (ELFCLASS32, ELFCLASS64) or endian not in (1, 2):
        raise ElfError("invalid ELF header")
    r = _Reader(data, elf_class=elf_class, big_endian=endian == 2)
    # e_type, e_machine, e_version, e_entry, e_phoff, e_shoff, e_flags, e_ehsize,
    # e_phentsize, e_phnum, e_shentsize, e_shnum, e_shstrndx
    fields = r.unpack("HHIQQQIHHHHHH" if r.is64 else "HHIIIIIHHHHHH", 16)
    return r, fields


def _segments(r: _Reader, fields: tuple[int, ...]) -> list[tuple[int, int, int, int, int]]:
    """(p_type, p_offset, p_vaddr, p_filesz, p_memsz) for each program header."""
    phoff, phentsize, phnum = fields[4], fields[8], fields[9]
    if phnum == 0:
        return []
    need = 56 if r.is64 else 32
    if phentsize < need:
        raise ElfError("bad program header size")
    count = min(phnum, _MAX_ENTRIES)
    if phentsize == need and phoff + count * need <= r.size:
        # The usual layout, decoded in one C-level pass (a torch tree has ~25 files of ~10 headers).
        table = r.data[phoff : phoff + count * need]
        headers = struct.iter_unpack(r.e + ("IIQQQQQQ" if r.is64 else "IIIIIIII"), table)
    else:
        headers = (
            r.unpack("IIQQQQQQ" if r.is64 else "IIIIIIII", phoff + i * phentsize) for i in range(count)
        )
    out = []
    for h in headers:
        if r.is64:
            p_type, _flags, p_offset, p_vaddr, _paddr, p_filesz, p_memsz, align = h
        else:
            p_type, p_offset, p_vaddr, _paddr, p_filesz, p_memsz, _flags, align = h
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
    # one-by-one read would raise at that entry.
    present = max(0, min(count, (r.size - offset) // entsize))
    out: list[tuple[int, int]] = []
    for tag, val in struct.iter_unpack(
        r.e + ("qQ" if r.is64 else "iI"), r.data[offset : offset + present * entsize]
    ):
        if tag == DT_NULL:
            return out
        out.append((tag, val))
    if present < count:
        raise ElfError("file too short")
    return out


def parse(data: bytes | mmap.mmap) -> ElfInfo:
    """Decode the loader-relevant facts from the bytes of an ELF file."""
    try:
        return _parse(data)
    except ElfError:
        raise
    except (struct.error, ValueError, OverflowError, IndexError, MemoryError) as exc:
        raise ElfError(f"malformed ELF: {exc}") from None


def _parse(data: bytes | mmap.mmap) -> ElfInfo:
    r, fields = _header(data)
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
        for tag, val in dyn:
            if tag == DT_NEEDED:
                needed.append(r.cstring(str_off + val, limit))
            elif tag == DT_SONAME:
                soname = r.cstring(str_off + val, limit)
            elif tag == DT_RPATH:
                rpath = r.cstring(str_off + val, limit)
            elif tag == DT_RUNPATH:
                runpath = r.cstring(str_off + val, limit)
            elif tag == DT_FLAGS_1:
                nodeflib = bool(val & DF_1_NODEFLIB)
    return ElfInfo(
        elf_class=data[4],
        big_endian=data[5] == 2,
        machine=e_machine,
        osabi=data[7],
        type=e_type,
        soname=soname,
        needed=tuple(needed),
        rpath=rpath,
        runpath=runpath,
        nodeflib=nodeflib,
        interp=interp,
    )


class MappedFile:
    """An ELF file mapped read-only; use as a context manager."""

    def __init__(self, path: str) -> None:
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
        if isinstance(self.data, mmap.mmap):
            self.data.close()
        os.close(self._fd)


def read_elf(path: str) -> ElfInfo:
    """Read ``path``; ``OSError`` if it cannot be opened, ``ElfError`` if it is not valid ELF."""
    # Only the first pages matter for most files, but PT_DYNAMIC's strings can sit anywhere.
    with MappedFile(path) as f:
        if isinstance(f.data, bytes) or len(f.data) == 0:
            raise ElfError("file too short")
        return parse(f.data)


def sections(data: bytes | mmap.mmap) -> list[Section]:
    """The section table (names resolved); ``ElfError`` if it is malformed."""
    try:
        r, fields = _header(data)
        shoff, shentsize, shnum, shstrndx = fields[5], fields[10], fields[11], fields[12]
        if shoff == 0 or shnum == 0:
            return []
        if shentsize < (64 if r.is64 else 40) or shstrndx >= shnum:
            raise ElfError("bad section header table")
        raw = []
        for i in range(min(shnum, _MAX_ENTRIES)):
            off = shoff + i * shentsize
            if r.is64:
                name, _t, _f, _a, s_off, s_size = r.unpack("IIQQQQ", off)
            else:
                name, _t, _f, _a, s_off, s_size = r.unpack("IIIIII", off)
            raw.append((name, s_off, s_size))
        str_off, str_size = raw[shstrndx][1], raw[shstrndx][2]
        return [
            Section(name=r.cstring(str_off + n, str_off + str_size), offset=o, size=s)
            for n, o, s in raw
            if n < str_size
        ]
    except ElfError:
        raise
    except (struct.error, ValueError, OverflowError, IndexError) as exc:
        raise ElfError(f"malformed ELF: {exc}") from None


def version_needs(data: bytes | mmap.mmap) -> dict[str, tuple[str, ...]]:
    """DT_VERNEED: for each needed file, the symbol versions required from it (``GLIBC_2.28``…)."""
    try:
        return _versions(data, want_defs=False)
    except ElfError:
        raise
    except (struct.error, ValueError, OverflowError, IndexError) as exc:
        raise ElfError(f"malformed ELF: {exc}") from None


def version_defs(data: bytes | mmap.mmap) -> tuple[str, ...]:
    """DT_VERDEF: the symbol versions this object defines (libc.so.6 defines ``GLIBC_2.36``…)."""
    try:
        return _versions(data, want_defs=True).get("", ())
    except ElfError:
        raise
    except (struct.error, ValueError, OverflowError, IndexError) as exc:
        raise ElfError(f"malformed ELF: {exc}") from None


def glibc_version(tag: str) -> tuple[int, ...] | None:
    """``GLIBC_2.34`` or ``2.34`` -> (2, 34); None for another tag (``GLIBC_PRIVATE``, ``GCC_3.0``). glibc
    numbers its symbol versions in its own scheme, not NVIDIA's: this is the one place that reads it."""
    text = tag.removeprefix("GLIBC_")
    if text == tag and tag[:1].isalpha():
        return None
    parts = text.split(".")
    return tuple(int(p) for p in parts) if all(p.isdigit() for p in parts) else None


def _versions(data: bytes | mmap.mmap, *, want_defs: bool) -> dict[str, tuple[str, ...]]:
    r, fields = _header(data)
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
            _v, flags, _ndx, cnt, _h, aux, nxt = r.unpack("HHHHIII", off)
            if cnt and not flags & 0x1:  # VER_FLG_BASE names the file itself, not a version it defines
                vda_name, _vda_next = r.unpack("II", off + aux)
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
        _v, cnt, vn_file, aux, nxt = r.unpack("HHIII", off)
        lib = r.cstring(str_off + vn_file, limit)
        versions: list[str] = []
        a = off + aux
        for _j in range(min(cnt, _MAX_ENTRIES)):
            # Vernaux: vna_hash, vna_flags, vna_other, vna_name, vna_next
            _h, _fl, _o, vna_name, vna_next = r.unpack("IHHII", a)
            versions.append(r.cstring(str_off + vna_name, limit))
            if vna_next == 0:
                break
            a += vna_next
        out[lib] = tuple(versions)
        if nxt == 0:
            break
        off += nxt
    return out
