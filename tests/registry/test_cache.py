"""The digest cache and the doctor's import budget, without a registry or an engine."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

from imagesmith.registry.facts import ConfigCache

BODY = b'{"config": {"Labels": {"io.imagesmith.cuda": "12.8"}}}'
DIGEST = "sha256:" + hashlib.sha256(BODY).hexdigest()


def test_cache_keeps_only_bytes_that_match_their_digest(tmp_path: Path) -> None:
    cache = ConfigCache(tmp_path)
    assert cache.get(DIGEST) is None
    assert not cache.put(DIGEST, BODY + b" ")  # not what the digest names: never written
    assert not list(tmp_path.iterdir())
    assert cache.put(DIGEST, BODY) and cache.get(DIGEST) == BODY
    entry = tmp_path / f"{DIGEST[7:]}.json"
    entry.write_bytes(BODY.replace(b"12.8", b"13.0"))
    assert cache.get(DIGEST) is None and not entry.exists()  # a tampered entry is dropped, not served


def test_cache_ignores_names_that_are_not_sha256_digests(tmp_path: Path) -> None:
    cache = ConfigCache(tmp_path)
    for digest in ("sha256:../../etc/passwd", "sha512:" + "0" * 128, "sha256:" + "A" * 64):
        assert not cache.put(digest, BODY) and cache.get(digest) is None
    assert not list(tmp_path.iterdir())


def test_cache_in_an_unwritable_place_only_costs_requests(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert not ConfigCache(blocker / "registry").put(DIGEST, BODY)


def test_the_plain_doctor_never_imports_the_registry() -> None:
    code = (
        "import sys\n"
        "from imagesmith.doctor.cli import main\n"
        "main(['--no-probe', '--json'])\n"
        "print(sorted(m for m in sys.modules if m.startswith('imagesmith.registry')), file=sys.stderr)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stderr.strip().splitlines()[-1] == "[]", result.stderr
