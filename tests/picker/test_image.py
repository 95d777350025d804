from __future__ import annotations

import pytest

from imagesmith.errors import UsageError
from imagesmith.matrix.versions import Capability
from imagesmith.picker.image import image_filter, spec_for


@pytest.mark.parametrize(
    ("tag", "spec"),
    [
        ("ghcr.io/acme/ml/torch:2.8.0-py3.11-cu12.8-runtime-bookworm", "torch==2.8.0+cu128"),
        ("ghcr.io/acme/ml/torch:2.11.0-py3.12-cu13.0-devel-noble", "torch==2.11.0+cu130"),
        ("ghcr.io/acme/ml/jax:0.7.0-py3.12-cu12.8-runtime-bookworm", "jax==0.7.0+cuda12"),
        ("registry.local/tensorflow:2.20.0-py3.11-cu12.5-runtime-jammy", "tensorflow==2.20.0+cuda"),
        ("torch==2.8.0+cu128", "torch==2.8.0+cu128"),
    ],
)
def test_tag_to_spec(tag: str, spec: str) -> None:
    assert spec_for(tag) == spec


def test_unknown_framework_names_the_flag() -> None:
    with pytest.raises(UsageError) as info:
        spec_for("ghcr.io/acme/ml/mxnet:1.9.0-py3.10-cu11.8-runtime-focal")
    assert "--image" in info.value.one_line() and "mxnet" in info.value.one_line()


def test_verdicts_come_from_the_matrix() -> None:
    volta, turing, hopper = (Capability.parse(c) for c in ("7.0", "7.5", "9.0"))
    f = image_filter("torch==2.11.0+cu128", {volta, turing, hopper})
    assert f.verdicts[volta][0] is False and "sm_70" in f.verdicts[volta][1]
    assert f.verdicts[turing][0] and f.verdicts[hopper][0]


def test_unknown_build_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        image_filter("torch==1.0.0+cu999", {Capability.parse("8.0")})
