"""The on-disk parse cache: the same bytes give the cached parse, anything else is parsed again."""

from __future__ import annotations

from pathlib import Path

import pytest

from imagesmith import parsecache


@pytest.fixture
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # The cache's location is an environment setting the user owns (XDG_CACHE_HOME), not Python internals.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "imagesmith" / "parse"


def test_second_read_comes_from_the_cache(cache_home: Path) -> None:
    calls: list[bytes] = []

    def parse(raw: bytes) -> dict[str, object]:
        calls.append(raw)
        return {"text": raw.decode(), "lines": {("a", 0): 1}}

    first = parsecache.cached(b"a: 1\n", "t", parse)
    second = parsecache.cached(b"a: 1\n", "t", parse)
    assert first == second and len(calls) == 1
    assert len(list(cache_home.glob("t-*.marshal"))) == 1
    parsecache.cached(b"a: 2\n", "t", parse)
    assert len(calls) == 2


def test_a_corrupt_or_foreign_cache_file_is_parsed_again(cache_home: Path) -> None:
    parsecache.cached(b"x", "t", lambda raw: raw.decode())
    (path,) = cache_home.glob("t-*.marshal")
    path.write_bytes(b"not marshal at all")
    assert parsecache.cached(b"x", "t", lambda raw: "fresh") == "fresh"
    # A file under the right name holding another source (a CRC collision) is not trusted either.
    import marshal

    path.write_bytes(marshal.dumps((b"other source", "other parse")))
    assert parsecache.cached(b"x", "t", lambda raw: "fresh again") == "fresh again"


def test_values_marshal_cannot_hold_are_returned_uncached(cache_home: Path) -> None:
    import datetime

    when = datetime.date(2026, 11, 29)
    assert parsecache.cached(b"d", "t", lambda raw: {"released": when}) == {"released": when}
    assert not list(cache_home.glob("t-*.marshal"))


def test_an_unwritable_cache_costs_only_speed(cache_home: Path) -> None:
    # A file where the cache directory should be: no cache can be written (even as root), the parse stands.
    cache_home.parent.mkdir(parents=True)
    cache_home.write_text("in the way")
    assert parsecache.cached(b"r", "t", lambda raw: 42) == 42
    assert parsecache.cached(b"r", "t", lambda raw: 43) == 43


def test_old_versions_are_pruned(cache_home: Path) -> None:
    for i in range(parsecache.KEEP + 5):
        parsecache.cached(f"v{i}".encode(), "t", lambda raw: raw.decode())
    assert len(list(cache_home.glob("t-*.marshal"))) == parsecache.KEEP
