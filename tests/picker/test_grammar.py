from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from imagesmith.errors import UsageError
from imagesmith.picker.grammar import Range, Ratio, parse_capability, parse_memory, parse_range


@pytest.mark.parametrize(
    ("text", "inside", "outside"),
    [
        ("4", [4, 4.005], [3, 5, 8]),
        ("4+", [4, 5, 128], [3.9, 2]),
        ("4..", [4, 1000], [3]),
        ("..16", [0, 16], [16.5]),
        ("24..48", [24, 44.7, 48], [22.35, 80]),
        ("0.25+", [0.25, 1], [0.125]),
    ],
)
def test_forms(text: str, inside: list[float], outside: list[float]) -> None:
    r = parse_range(text, flag="--cpus")
    assert all(r.contains(v) for v in inside)
    assert not any(r.contains(v) for v in outside)


@pytest.mark.parametrize("text", ["", "four", "24GB+", "8..4", "..", "4++", "-1"])
def test_bad_values_name_the_flag(text: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_range(text, flag="--gpu-memory")
    assert info.value.one_line().startswith(f"--gpu-memory {text!r}")


def test_memory_ratio() -> None:
    assert parse_memory("4x") == Ratio(per_vcpu=4.0, text="4x")
    assert isinstance(parse_memory("16+"), Range)


def test_capability_forms() -> None:
    assert parse_capability("8.0").parts == (8, 0)
    assert parse_capability("sm_90").parts == (9, 0)
    assert parse_capability("SM_90a").parts == (9, 0)
    assert parse_capability("12.0").parts == (12, 0)
    assert parse_capability("12.0") > parse_capability("9.0")
    for bad in ("8.0.1", "86", "8.x"):
        with pytest.raises(UsageError):
            parse_capability(bad)
    with pytest.raises(UsageError) as info:
        parse_capability("ampere")
    assert info.value.one_line().startswith("--min-cc 'ampere'")


@given(st.integers(0, 512), st.floats(0, 1024, allow_nan=False))
def test_at_least_matches_exactly_the_values_above(n: int, value: float) -> None:
    assert parse_range(f"{n}+", flag="--cpus").contains(value) == (value >= n)
