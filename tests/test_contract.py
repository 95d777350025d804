"""The image contract: each format written and read by one module, round-tripping exactly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from imagesmith.contract import labels, plan_json, sm, tags
from imagesmith.errors import DataError


@pytest.mark.parametrize(
    ("text", "repository", "tag", "digest", "registry"),
    [
        ("ghcr.io/acme/ml/torch:2.13.0-py3.11-cu13.0-runtime-bookworm", "ghcr.io/acme/ml/torch",
         "2.13.0-py3.11-cu13.0-runtime-bookworm", None, "ghcr.io"),
        ("127.0.0.1:5000/team/base:py3.11", "127.0.0.1:5000/team/base", "py3.11", None, "127.0.0.1:5000"),
        ("127.0.0.1:5000/team/base", "127.0.0.1:5000/team/base", None, None, "127.0.0.1:5000"),
        ("localhost/x@sha256:ab", "localhost/x", None, "sha256:ab", "localhost"),
        ("r.io/a/b:t@sha256:cd", "r.io/a/b", "t", "sha256:cd", "r.io"),
        ("debian:bookworm", "debian", "bookworm", None, None),
    ],
)  # fmt: skip
def test_image_refs_parse_and_print_back(
    text: str, repository: str, tag: str | None, digest: str | None, registry: str | None
) -> None:
    ref = tags.ImageRef.parse(text)
    assert (ref.repository, ref.tag, ref.digest, ref.registry) == (repository, tag, digest, registry)
    assert str(ref) == text


def test_framework_tags_round_trip() -> None:
    tag = tags.framework_tag(
        "r.io/ml",
        framework="torch",
        version="2.13.0",
        python="3.11",
        cuda="13.0",
        variant="devel",
        os="bookworm",
    )
    parsed = tags.parse_framework_tag(tag)
    assert parsed is not None
    assert (parsed.framework, parsed.version, parsed.python, parsed.cuda, parsed.variant, parsed.os) == (
        "torch", "2.13.0", "3.11", "13.0", "devel", "bookworm",
    )  # fmt: skip
    assert tags.parse_framework_tag("r.io/ml/base:py3.11-bookworm") is None


@pytest.mark.parametrize("release", [0, 1, 12])
def test_the_release_part_of_immutable_tags_round_trips(release: int) -> None:
    tag = tags.framework_tag(
        "r.io/ml", framework="jax", version="0.10.0", python="3.11", cuda="12.9", variant="runtime",
        os="bookworm", release=release,
    )  # fmt: skip
    assert tag.endswith("-bookworm" if release == 0 else f"-bookworm-r{release}")
    parsed = tags.parse_framework_tag(tag)
    assert parsed is not None and (parsed.os, parsed.release) == ("bookworm", release)
    base = tags.base_tag("r.io/ml", python="3.11", os="trixie", release=release)
    assert base == "r.io/ml/base:py3.11-trixie" + (f"-r{release}" if release else "")


def test_labels_round_trip_and_read_none_for_unknown() -> None:
    promised = labels.ImageLabels(
        variant="runtime", python="3.11", os="bookworm", framework="torch==2.13.0+cu130", cuda="13.0.2",
        cudnn=None, min_driver="580.65.06", full_driver=None, sm=("sm_90", "compute_120"),
    )  # fmt: skip
    written = promised.to_labels()
    assert written[labels.CUDNN] == "none" and written[labels.FULL_DRIVER] == "unknown"
    assert written[labels.SM] == "sm_90,compute_120"
    assert labels.ImageLabels.from_labels(written) == promised
    base = labels.ImageLabels(variant="base", python="3.11", os="bookworm")
    assert labels.CUDA not in base.to_labels()
    assert sm.sass_of(promised.sm) == ("sm_90",) and sm.ptx_of(promised.sm) == ("compute_120",)


def test_plan_json_round_trips_through_its_one_module(tmp_path: Path) -> None:
    image = plan_json.PlannedImage(
        name="base", tag="r.io/ml/base:py3.11-bookworm", aliases=("r.io/ml/base:py3.11",), parent=None,
        base=plan_json.BaseRef(kind="os", name="bookworm", ref="debian:bookworm-slim"),
        context=Path("base"), dockerfile=Path("base/Dockerfile"), labels=(("io.imagesmith.variant", "base"),),
        python="3.11", variant="base", framework=None, cuda_runtime=None, min_driver=None, nodes=("l4",),
        tests=("doctor", "labels"), needs_imagesmith_wheel=True,
    )  # fmt: skip
    uncovered = (plan_json.Uncovered(node="k80", line="torch ~=2.13.0", why="no build runs there"),)
    path = tmp_path / "plan.json"
    path.write_text(plan_json.dumps((image,), generated_by="t", policy="p.yaml", uncovered=uncovered))
    loaded = plan_json.load(path, check_files=False)
    assert loaded.uncovered == uncovered and loaded.policy == "p.yaml"
    back = loaded.images[0]
    assert back.context == tmp_path / "base" and back.nodes == ("l4",) and back.variant == "base"
    assert plan_json.dumps(
        loaded.images, generated_by="t", policy="p.yaml", uncovered=uncovered, root=tmp_path
    ) == (path.read_text())
    with pytest.raises(DataError, match="Dockerfile"):
        plan_json.load(path)  # the builder needs the files


def test_plan_json_refuses_malformed_uncovered(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    image = {"name": "b", "tag": "r/b:1", "from": {"kind": "os", "name": "x", "ref": "x"}, "context": "b",
             "dockerfile": "b/Dockerfile"}  # fmt: skip
    path.write_text(json.dumps({"schema": 1, "uncovered": ["k80"], "images": [image]}, indent=2))
    with pytest.raises(DataError, match="'uncovered' must be a list of") as info:
        plan_json.load(path, check_files=False)
    assert info.value.where == f"{path}:3"


def test_hand_written_sm_lists_are_read_like_torch_cuda_arch_list() -> None:
    items = sm.parse_sm("8.0; 8.6+PTX sm_90,compute_120")
    assert sm.sass_of(items) == ("8.0", "8.6", "sm_90")
    assert sm.ptx_of(items) == ("8.6", "compute_120")
    assert sm.parse_sm("none") == () and sm.parse_sm(None) == ()
