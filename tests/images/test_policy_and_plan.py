"""Policy validation with file:line, and the planner's choices on real data."""

from __future__ import annotations

from pathlib import Path

import pytest

from imagesmith.errors import DataError
from imagesmith.images.plan import make_plan
from imagesmith.images.policy import default_policy_text, load_policy
from imagesmith.matrix import knowledge

KB = knowledge.load()

POLICY = """\
schema: 1
registry: registry.example/ml
bases:
  bookworm: {{image: debian:bookworm-slim, python: "3.11"}}
pythons: ["3.11"]
variants: [runtime]
frameworks:
  torch: ["~=2.13.0"]
fleet:
{fleet}
"""


def write(tmp_path: Path, fleet: str, **replace: str) -> Path:
    text = POLICY.format(fleet=fleet)
    for old, new in replace.items():
        text = text.replace(old, new)
    path = tmp_path / "imagesmith.yaml"
    path.write_text(text)
    return path


def test_the_example_team_is_the_embedded_default_adopted(example: Path) -> None:
    """The example team's policy is what `imagesmith init --adopt` makes of the embedded default."""
    from imagesmith.team.init import adopt_policy_text

    assert (example / "imagesmith.yaml").read_text() == adopt_policy_text(default_policy_text())


def test_smallest_cover_needs_two_torch_builds(tmp_path: Path) -> None:
    fleet = '  - {name: v100, driver: "535.247.01", gpu: V100}\n  - {name: b200, driver: "580.82.07", gpu: B200}\n'
    plan = make_plan(KB, load_policy(write(tmp_path, fleet), KB))
    runtime = [i for i in plan.images if i.variant == "runtime"]
    assert sorted(i.build_variant or "" for i in runtime) == ["cu126", "cu130"]
    assert not plan.uncovered
    assert any(d.subject == "torch==2.13.0+cu132" for d in plan.left_out)
    base = plan.images[0]
    assert base.parent is None and all(i.parent == base.name for i in runtime)


def test_one_build_when_it_covers_everything(tmp_path: Path) -> None:
    fleet = (
        '  - {name: h100, driver: "580.82.07", gpu: H100}\n  - {name: b200, driver: "580.82.07", gpu: B200}\n'
    )
    plan = make_plan(KB, load_policy(write(tmp_path, fleet), KB))
    assert [i.build_variant for i in plan.images if i.variant == "runtime"] == ["cu130"]
    image = plan.images[1]
    labels = dict(image.labels)
    assert labels["io.imagesmith.min-driver"] == "580.65.06"
    assert (
        "sm_100" in labels["io.imagesmith.sm"] and labels["io.imagesmith.framework"] == "torch==2.13.0+cu130"
    )
    assert image.tag == "registry.example/ml/torch:2.13.0-py3.11-cu13.0-runtime-bookworm"


def test_uncoverable_node_is_reported(tmp_path: Path) -> None:
    fleet = '  - {name: k80, driver: "470.82.01", gpu: K80}\n'
    plan = make_plan(KB, load_policy(write(tmp_path, fleet), KB))
    assert plan.uncovered and "k80" in plan.uncovered[0].subject


@pytest.mark.parametrize(
    ("fleet", "replace", "line", "words"),
    [
        ('  - {name: x, driver: "535.x", gpu: H100}\n', {}, 10, "driver"),
        ('  - {name: x, driver: "535.104.05", gpu: H1000}\n', {}, 10, "GPU"),
        (
            '  - {name: x, driver: "535.104.05", gpu: H100}\n',
            {'["~=2.13.0"]': '["~=banana"]'},
            8,
            "specifier",
        ),
        (
            '  - {name: x, driver: "535.104.05", gpu: H100}\n',
            {"variants: [runtime]": "variants: [slim]"},
            6,
            "variant",
        ),
        (
            '  - {name: x, driver: "535.104.05", gpu: H100}\n',
            {'pythons: ["3.11"]': 'pythons: ["3.12"]'},
            5,
            "python",
        ),
        (
            '  - {name: x, driver: "535.104.05", gpu: H100}\n',
            {"schema: 1": "schema: 1\ncolour: blue"},
            2,
            "colour",
        ),
        ("", {"fleet:\n": "fleet: []\n"}, 9, "fleet is empty"),
        (
            '  - {name: x, driver: "535.104.05", gpu: H100}\n',
            {'frameworks:\n  torch: ["~=2.13.0"]': "frameworks: {}"},
            7,
            "no framework line",
        ),
        (
            '  - {name: x, driver: "535.104.05", gpu: H100}\n',
            {'pythons: ["3.11"]': "pythons: []"},
            5,
            "no python",
        ),
    ],
)
def test_policy_errors_name_file_and_line(
    tmp_path: Path, fleet: str, replace: dict[str, str], line: int, words: str
) -> None:
    path = write(tmp_path, fleet, **replace)
    with pytest.raises(DataError) as info:
        load_policy(path, KB)
    assert info.value.where == f"{path}:{line}", info.value.one_line()
    assert words.lower() in info.value.one_line().lower()


def test_policy_error_via_cli(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = write(tmp_path, '  - {name: x, driver: "535.x", gpu: H100}\n')
    result = run_cli("images", "plan", "--policy", str(path))
    assert result.returncode == 2
    assert result.stderr.strip() == f"imagesmith: error: {path}:10: not a driver version: '535.x'"


def test_plan_fast_path_prints_what_the_click_command_prints(tmp_path: Path) -> None:
    """`images plan` is answered before click is imported; the click command must say the same."""
    import subprocess
    import sys

    for flags in ([], ["--explain"], ["--json"]):
        fast = subprocess.run(
            [sys.executable, "-m", "imagesmith", "images", "plan", *flags],
            capture_output=True,
            text=True,
            cwd=tmp_path,
        )
        slow = subprocess.run(
            [sys.executable, "-c", "import sys; from imagesmith.cli import run; sys.exit(run(sys.argv[1:]))",
             "images", "plan", *flags],
            capture_output=True, text=True, cwd=tmp_path,
        )  # fmt: skip
        assert (fast.returncode, fast.stdout) == (slow.returncode, slow.stdout), flags
    imported = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "imagesmith", "images", "plan"], capture_output=True, text=True,
        cwd=tmp_path,
    ).stderr  # fmt: skip
    modules = {
        line.split("|")[-1].strip() for line in imported.splitlines() if line.startswith("import time:")
    }
    assert "imagesmith.images.plan_view" in modules and "click" not in modules
