"""Compiled GPU architectures of a CUDA library, read from its ``.nv_fatbin`` headers.

Header-only walk (payloads may be compressed and libtorch_cuda.so is ~1 GB): container ``<IHHQ>``
(magic 0xBA55ED50, version, header size, payload size), then entries ``<HHIQ>`` (kind 1 = PTX,
2 = SASS; version; entry header size; padded payload size) with ``sm_arch`` at +28.
"""

from __future__ import annotations

import struct

from imagesmith.doctor.loader import elf

MAGIC = 0xBA55ED50
KIND_PTX = 1
KIND_SASS = 2
SECTIONS = (".nv_fatbin", "__nv_relfatbin")


def scan(path: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(sass, ptx) architectures as integers (86 = sm_86); empty when there is no fatbin."""
    sass, ptx = census(path)
    return tuple(sorted(sass)), tuple(sorted(ptx))


def census(path: str) -> tuple[dict[int, int], dict[int, int]]:
    """How many fatbin entries each architecture has, SASS and PTX apart: a framework's main library has
    one entry per kernel for every architecture of its build list, and a handful for architecture-specific
    extras (an sm_89 FP8 kernel), which ``scan`` alone cannot tell apart."""
    sass: dict[int, int] = {}
    ptx: dict[int, int] = {}
    try:
        with elf.MappedFile(path) as f:
            data = f.data
            for section in elf.sections(data):
                if section.name in SECTIONS:
                    _walk(data, section.offset, section.size, sass, ptx)
    except (OSError, elf.ElfError, struct.error, ValueError):
        pass
    return sass, ptx


def _walk(data: bytes | object, start: int, size: int, sass: dict[int, int], ptx: dict[int, int]) -> None:
    end = start + size
    buf = data
    off = start
    containers = 0
    while off + 16 <= end and containers < 100_000:
        magic, _version, header_size, payload = struct.unpack_from("<IHHQ", buf, off)  # type: ignore[arg-type]
        if magic != MAGIC or header_size < 16:
            # Containers are 8-byte aligned; skip padding between them.
            off += 8
            continue
        containers += 1
        entry = off + header_size
        stop = min(entry + payload, end)
        while entry + 32 <= stop:
            kind, _ev, entry_header, padded = struct.unpack_from("<HHIQ", buf, entry)  # type: ignore[arg-type]
            if entry_header < 32:
                break
            (arch,) = struct.unpack_from("<I", buf, entry + 28)  # type: ignore[arg-type]
            if kind == KIND_SASS:
                sass[arch] = sass.get(arch, 0) + 1
            elif kind == KIND_PTX:
                ptx[arch] = ptx.get(arch, 0) + 1
            entry += entry_header + padded
        off = off + header_size + payload
