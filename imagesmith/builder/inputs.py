"""The input hash: everything rendered into an image, so an unchanged image is recognised and skipped.

Covers the Dockerfile, every file of the build context (wheels by their members, because a rebuilt
wheel differs only in zip timestamps), the parent's image ID, the build arguments that change content
and the planned labels. The CA-certificate URL is left out on purpose: it changes every run and the
certificate never reaches the image.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from collections.abc import Mapping
from pathlib import Path

_VERSION = b"imagesmith-build-input-v1\0"
# Build arguments whose value is transport only and never changes what lands in the image. BASE_IMAGE
# is only the name the parent is reached by (a tag locally, repo@digest from a registry): the parent's
# image ID, hashed below, is its content.
TRANSPORT_ARGS = frozenset({"CA_CERT_URL", "BASE_IMAGE"})


def _archive_digest(path: Path) -> bytes:
    digest = hashlib.sha256()
    try:
        with zipfile.ZipFile(path) as archive:
            for info in sorted(archive.infolist(), key=lambda i: i.filename):
                digest.update(info.filename.encode() + b"\0")
                digest.update(archive.read(info) + b"\0")
    except zipfile.BadZipFile:
        digest.update(path.read_bytes())
    return digest.digest()


def _file_digest(path: Path) -> bytes:
    if path.suffix in (".whl", ".zip"):
        return _archive_digest(path)
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.digest()


def context_digest(context: Path) -> str:
    """sha256 over the context tree: relative paths, file kinds, executable bits and contents."""
    digest = hashlib.sha256()
    entries: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(context):
        dirnames.sort()
        base = Path(dirpath)
        entries.extend(base / name for name in sorted(filenames))
        entries.extend(base / name for name in dirnames if (base / name).is_symlink())
    for path in sorted(entries, key=lambda p: p.relative_to(context).as_posix()):
        rel = path.relative_to(context).as_posix()
        if path.is_symlink():
            digest.update(f"L {rel} -> {path.readlink()}\0".encode())
            continue
        mode = "x" if os.access(path, os.X_OK) else "-"
        digest.update(f"F {rel} {mode}\0".encode())
        digest.update(_file_digest(path))
    return digest.hexdigest()


def input_hash(
    *,
    dockerfile: Path,
    context: Path,
    parent_id: str,
    build_args: Mapping[str, str],
    labels: Mapping[str, str],
) -> str:
    digest = hashlib.sha256(_VERSION)
    digest.update(b"dockerfile\0" + dockerfile.read_bytes() + b"\0")
    digest.update(b"context\0" + context_digest(context).encode() + b"\0")
    digest.update(b"parent\0" + parent_id.encode() + b"\0")
    for key in sorted(build_args):
        if key not in TRANSPORT_ARGS:
            digest.update(f"arg {key}={build_args[key]}\0".encode())
    for key in sorted(labels):
        digest.update(f"label {key}={labels[key]}\0".encode())
    return "sha256:" + digest.hexdigest()
