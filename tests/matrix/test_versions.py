"""The one version vocabulary: NvVersion for driver/CUDA/cuDNN, Capability for compute capability."""

from __future__ import annotations

import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from imagesmith.matrix.versions import Capability, NvVersion


def test_capability_spellings_are_one_value() -> None:
    forms = ("8.6", "sm_86", "SM_86", "compute_86", "sm86")
    assert len({Capability.parse(f) for f in forms}) == 1
    assert Capability.parse("sm_100").parts == (10, 0)
    assert Capability.parse("sm_90a") == Capability.parse("9.0")
    assert str(Capability.parse("sm_120")) == "12.0" and Capability.parse("12.0").sm == "sm_120"


@pytest.mark.parametrize("bad", ["86", "8.6.1", "ampere", "", "sm_", "8.x"])
def test_capability_refuses_what_is_not_one(bad: str) -> None:
    with pytest.raises(ValueError, match="compute capability"):
        Capability.parse(bad)


def test_capability_orders_numerically_and_survives_pickle() -> None:
    caps = [Capability.parse(c) for c in ("12.0", "8.9", "10.0", "9.0", "8.0")]
    assert [str(c) for c in sorted(caps)] == ["8.0", "8.9", "9.0", "10.0", "12.0"]
    again = pickle.loads(pickle.dumps(caps[0]))
    assert isinstance(again, Capability) and again == caps[0]


def test_leading_reads_what_nodes_report() -> None:
    assert NvVersion.leading("12.4.127+cu124") == NvVersion.parse("12.4.127")
    assert str(NvVersion.leading("580.65.06 ")) == "580.65.06"
    assert NvVersion.leading("") is None and NvVersion.leading(None) is None
    assert NvVersion.leading("unknown") is None


def test_keeps_a_promise_on_the_components_it_gives() -> None:
    promise = NvVersion.parse("12.8")
    assert NvVersion.parse("12.8.90").keeps(promise)
    assert not NvVersion.parse("12.80").keeps(promise)
    assert not NvVersion.parse("12").keeps(promise)


def test_same_release_compares_what_both_sides_say() -> None:
    assert NvVersion.parse("13.0").same_release(NvVersion.parse("13.0.2"))
    assert not NvVersion.parse("13.1").same_release(NvVersion.parse("13.0.2"))
    assert NvVersion.parse("9.1.0.70").same_release(NvVersion.parse("9.1.0.2"))  # three components at most


@given(
    st.lists(st.integers(0, 999), min_size=1, max_size=4),
    st.lists(st.integers(0, 999), min_size=1, max_size=4),
)
def test_order_is_the_integer_tuple_order_ignoring_trailing_zeros(a: list[int], b: list[int]) -> None:
    def key(parts: list[int]) -> tuple[int, ...]:
        width = max(len(a), len(b))
        return tuple(parts + [0] * (width - len(parts)))

    x, y = NvVersion.parse(".".join(map(str, a))), NvVersion.parse(".".join(map(str, b)))
    assert (x < y) == (key(a) < key(b)) and (x == y) == (key(a) == key(b))
