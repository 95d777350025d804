"""Compressed image size: the sum of gzip-compressed layer sizes, i.e. what a registry push transfers.

``docker save`` hands out uncompressed layer tars; each is gzip-compressed (level 6, the default of the
engine's push) and counted. Results are cached per layer diff ID (the sha256 of the uncompressed tar,
so the cache can never be stale): the layers a child shares with its parent are only hashed, and a
no-op rebuild does not call ``docker save`` at all.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import tempfile
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO

_LOCK = threading.Lock()
_CHUNK = 1 << 20


class _IterReader(io.RawIOBase):
    """A read-only file over an iterator of byte chunks (the engine's save stream)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks: Iterator[bytes] = iter(chunks)
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, target: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._buffer:
            try:
                self._buffer = next(self._chunks)
            except StopIteration:
                return 0
        size = min(len(target), len(self._buffer))
        target[:size] = self._buffer[:size]
        self._buffer = self._buffer[size:]
        return size


def gzip_size(handle: IO[bytes]) -> int:
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31)  # wbits 31: gzip framing, as pushed
    total = 0
    while chunk := handle.read(_CHUNK):
        total += len(compressor.compress(chunk))
    return total + len(compressor.flush())


class LayerSizeCache:
    """``diff_id -> gzip size`` in one JSON file, shared by concurrent builds of this process."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, int]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return {str(k): int(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def update(self, sizes: dict[str, int]) -> None:
        with _LOCK:
            merged = {**self.load(), **sizes}
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".layer-sizes")
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(merged, handle, sort_keys=True)
            Path(tmp).replace(self.path)


def _measure_stream(chunks: Iterable[bytes]) -> dict[str, int]:
    """gzip sizes of every tar member of a save stream that could be a layer, keyed by its sha256."""
    sizes: dict[str, int] = {}
    with tarfile.open(fileobj=io.BufferedReader(_IterReader(chunks), _CHUNK), mode="r|") as archive:
        for member in archive:
            if not member.isfile() or member.name.endswith((".json", "VERSION", "repositories")):
                continue
            source = archive.extractfile(member)
            if source is None:
                continue
            digest = hashlib.sha256()
            with tempfile.TemporaryFile() as spool:
                while chunk := source.read(_CHUNK):
                    digest.update(chunk)
                    spool.write(chunk)
                spool.seek(0)
                sizes[f"sha256:{digest.hexdigest()}"] = gzip_size(spool)
    return sizes


def compressed_size(
    layers: tuple[str, ...], save: Callable[[], Iterable[bytes]], cache: LayerSizeCache
) -> int:
    """Sum of gzip sizes of ``layers`` (diff IDs, in order); calls ``save`` only for unknown layers."""
    known = cache.load()
    if any(layer not in known for layer in layers):
        measured = _measure_stream(save())
        cache.update({k: v for k, v in measured.items() if k in layers})
        known.update(measured)
    missing = [layer for layer in layers if layer not in known]
    if missing:
        raise RuntimeError(f"docker save did not contain layer {missing[0]}")
    return sum(known[layer] for layer in layers)


def human(size: int | None) -> str:
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"
