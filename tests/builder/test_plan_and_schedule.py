"""plan.json reading and the pure scheduling core (no engine needed)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from imagesmith.builder.schedule import Schedule, select
from imagesmith.contract import plan_json as plan_mod
from imagesmith.errors import DataError, UnknownName, UsageError

FIXTURE = Path(__file__).parent / "fixtures" / "small"


def _copy(tmp_path: Path) -> Path:
    shutil.copytree(FIXTURE, tmp_path / "p")
    return tmp_path / "p" / "plan.json"


def _edit(path: Path, change: Any) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data, indent=2))


def test_fixture_plan_loads_in_order_with_inherited_tests() -> None:
    loaded = plan_mod.load(FIXTURE / "plan.json")
    assert [i.name for i in loaded.images][:2] == ["base-py3.11-bookworm", "cudart-12.9-py3.11-bookworm"]
    cudart = loaded.by_name()["cudart-12.9-py3.11-bookworm"]
    assert cudart.base.kind == "image" and cudart.parent == "base-py3.11-bookworm"
    assert cudart.cuda_runtime == "12.9"
    assert loaded.tests_for(cudart.name) == ("doctor", "labels", "framework-import")
    assert [a.name for a in loaded.ancestors("broken-leaf-py3.11-bookworm")] == [
        "broken-py3.11-bookworm",
        "base-py3.11-bookworm",
    ]


def test_missing_plan_names_the_file_and_the_fix(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as info:
        plan_mod.load(tmp_path / "plan.json")
    assert "plan.json" in info.value.one_line() and "images render" in info.value.one_line()


def test_invalid_json_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    path.write_text('{\n  "schema": 1,\n  "images": [\n}\n')
    with pytest.raises(DataError) as info:
        plan_mod.load(path)
    assert info.value.where is not None and info.value.where.startswith(f"{path}:4:")


def test_child_before_parent_is_refused_with_its_line(tmp_path: Path) -> None:
    path = _copy(tmp_path)
    _edit(path, lambda d: d["images"].reverse())
    with pytest.raises(DataError) as info:
        plan_mod.load(path)
    text = path.read_text()
    line = text[: text.index('"name": "broken-leaf-py3.11-bookworm"')].count("\n") + 1
    assert info.value.where == f"{path}:{line}"
    assert "parents first" in info.value.message


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(schema=2), "unsupported plan schema"),
        (lambda d: d["images"][1].update(tests=["doctor", "gpu-burn"]), "unknown smoke test 'gpu-burn'"),
        (lambda d: d["images"][1]["from"].update(name="other"), "'from' names image 'other'"),
        (lambda d: d["images"][0].update(dockerfile="nowhere/Dockerfile"), "does not exist"),
        (lambda d: d["images"][1].update(labels={"a": 1}), "'labels' must map strings"),
        (lambda d: d["images"].append(d["images"][0]), "planned twice"),
    ],
)
def test_bad_plans_are_one_line_data_errors(tmp_path: Path, change: Any, message: str) -> None:
    path = _copy(tmp_path)
    _edit(path, change)
    with pytest.raises(DataError) as info:
        plan_mod.load(path)
    assert message in info.value.one_line()
    assert str(path) in info.value.one_line()


PARENTS = {"base": None, "a": "base", "a1": "a", "b": "base", "other": None}


def test_select_adds_ancestors_in_plan_order() -> None:
    assert select(PARENTS, ["a1"]) == ("base", "a", "a1")
    assert select(PARENTS, []) == tuple(PARENTS)
    with pytest.raises(UnknownName) as info:
        select(PARENTS, ["bsae"])
    assert info.value.one_line() == "IMAGE: unknown image 'bsae' (closest known: base)"


def test_failure_skips_only_descendants() -> None:
    plan = Schedule.of(PARENTS, PARENTS)
    assert plan.ready(4) == ["base", "other"]
    assert plan.finish("base", ok=True) == []
    assert plan.ready(4) == ["a", "b"]
    assert plan.finish("a", ok=False) == ["a1"]
    assert plan.skipped == {"a1": "a"}
    assert plan.ready(4) == []
    plan.finish("b", ok=True)
    plan.finish("other", ok=True)
    assert plan.finished and plan.done == {"base", "b", "other"}


@st.composite
def forests(draw: st.DrawFn) -> dict[str, str | None]:
    size = draw(st.integers(1, 12))
    parents: dict[str, str | None] = {}
    for i in range(size):
        parent = draw(st.one_of(st.none(), st.integers(0, i - 1))) if i else None
        parents[f"n{i}"] = None if parent is None else f"n{parent}"
    return parents


@given(forests(), st.integers(1, 4), st.data())
def test_schedule_respects_parents_jobs_and_failures(
    parents: dict[str, str | None], jobs: int, data: st.DataObject
) -> None:
    plan = Schedule.of(parents, parents)
    failed: set[str] = set()
    while not plan.finished:
        started = plan.ready(jobs)
        assert len(plan.running) <= jobs
        for name in started:
            assert parents[name] is None or parents[name] in plan.done
        name = data.draw(st.sampled_from(sorted(plan.running)))
        ok = data.draw(st.booleans())
        plan.finish(name, ok=ok)
        if not ok:
            failed.add(name)
    for name, cause in plan.skipped.items():
        assert cause in failed
        ancestor = parents[name]
        while ancestor is not None and ancestor != cause:
            ancestor = parents[ancestor]
        assert ancestor == cause
    assert set(parents) == plan.done | plan.failed | set(plan.skipped)
