"""The copier extension's pieces on their own: resource answers, curated-image menus, the rename migration."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from copier.errors import UserMessageError
from jinja2 import Environment

from imagesmith.errors import UsageError
from imagesmith.images import catalog
from imagesmith.images.catalog import EMBEDDED, CuratedChoice, curated_choices, default_image
from imagesmith.templating import extension, images, migrate, resources
from tests.templates.templates_kit import PLAN_JSON, commit_all, git, set_policy, team_policy

TEAM = "localhost:5000/team"


def test_counts_parse_and_bad_ones_name_the_answer() -> None:
    assert resources.parse_count(" 8 ", name="cpus", minimum=1) == 8
    with pytest.raises(UsageError) as bad:
        resources.parse_count("lots", name="memory_gb", minimum=1)
    assert bad.value.one_line() == "memory_gb: expected a whole number, got 'lots'"
    assert extension.resource_error(0, "gpus", 1) == "gpus: must be at least 1, got 0"
    assert extension.resource_error("2", "gpus", 1) == ""


def test_unknown_cloud_is_refused() -> None:
    with pytest.raises(UsageError, match="unknown cloud 'ibm'"):
        resources.resources_from_answers(cpus=1, memory_gb=1, gpus=0, cloud="ibm")


def test_picker_arguments_are_floors_and_gpu_fields_only_with_gpus() -> None:
    gpu = resources.resources_from_answers(cpus=8, memory_gb=32, gpus=2, gpu_memory_gb=40, cloud="gcp")
    assert resources.picker_arguments(gpu) == {
        "cpus": "8+",
        "memory": "32+",
        "gpus": "2",
        "cloud": "gcp",
        "gpu": None,
        "gpu_memory": "40+",
    }
    cpu = resources.resources_from_answers(cpus=2, memory_gb=4, gpus=0, gpu_memory_gb=40)
    assert "gpu_memory" not in resources.picker_arguments(cpu)


def test_picked_instance_fits_the_request() -> None:
    from imagesmith.picker import pick

    res = resources.resources_from_answers(cpus=4, memory_gb=16, gpus=1, gpu_memory_gb=24, cloud="aws")
    name = resources.instance_type(res)
    row = pick(cpus="4+", memory="16+", gpus="1", gpu_memory="24+", cloud="aws", no_burstable=True).choice
    assert row is not None and name == row.instance_type


def test_extension_errors_reach_copier_as_one_line() -> None:
    from copier.errors import UserMessageError

    with pytest.raises(UserMessageError, match=r"^imagesmith: cpus: must be at least 1, got -1$"):
        extension.instance_type(-1, 16)


def render(expression: str, **context: Any) -> str:
    """Render one ``copier.yml`` expression with the extension, as copier does (context: ``_copier_conf``...)."""
    env = Environment(extensions=[extension.ImagesmithExtension])
    return env.from_string("{{ " + expression + " }}").render(**context)


def conf(src: Path, **data: str) -> dict[str, Any]:
    return {"_copier_conf": {"src_path": src, "data": data}}


@pytest.fixture(scope="module")
def team_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A template source folder holding a team policy (another registry) and its rendered plan."""
    src = tmp_path_factory.mktemp("team-src")
    set_policy(src, team_policy(TEAM))
    return src


def test_default_is_the_image_on_most_fleet_nodes_and_the_help_says_why() -> None:
    choices = curated_choices()
    torch = {c.cuda: c for c in choices if c.framework == "torch" and c.variant == "runtime"}
    assert (len(torch["12.6"].nodes), len(torch["13.0"].nodes)) == (5, 3)  # the default policy's fleet
    assert render("imagesmith_default_image('torch', '3.11', 'gpu')") == torch["12.6"].tag
    assert default_image(framework="torch", python="3.11") == torch["12.6"].tag
    help_text = render("imagesmith_image_help('torch', '3.11', 'gpu')")
    assert help_text == (
        f"Curated base image (from {EMBEDDED}); default {torch['12.6'].tag}: "
        "runs on 5 of 6 fleet nodes (cu13.0 image: 3)"
    )
    menu = json.loads(render("imagesmith_image_choices('torch', '3.11', 'gpu')"))
    assert menu[:2] == [torch["12.6"].tag, torch["13.0"].tag]  # the default first, then by coverage
    assert set(menu) == {c.tag for c in choices}
    base = [c for c in choices if c.framework is None]
    assert render("imagesmith_default_image('none', none, 'cpu')") == base[0].tag
    assert "runs on 6 of 6 fleet nodes" in render("imagesmith_image_help('none', none, 'cpu')")


def test_ties_in_coverage_go_to_the_newest_cuda() -> None:
    def image(cuda: str, nodes: int) -> CuratedChoice:
        return CuratedChoice(
            tag=f"r/torch:cu{cuda}",
            framework="torch",
            framework_version="2",
            python="3.11",
            variant="runtime",
            cuda=cuda,
            nodes=tuple(f"n{i}" for i in range(nodes)),
        )

    choices = [image("12.4", 4), image("12.10", 4), image("12.8", 4), image("13.0", 2)]
    assert (
        images.default_tag(choices, framework="torch", python="3.11", accelerator="gpu") == "r/torch:cu12.10"
    )


def test_the_template_source_plan_wins_then_its_policy_then_the_embedded_one(
    team_source: Path, tmp_path: Path
) -> None:
    torch_default = "imagesmith_default_image('torch', '3.11', 'gpu')"
    # plan.json first, even when imagesmith.yaml beside it says something else (the plan is what was built).
    planned = tmp_path / "planned"
    shutil.copytree(team_source, planned)
    (planned / "imagesmith.yaml").write_text(team_policy("localhost:5000/other"), encoding="utf-8")
    assert render(torch_default, **conf(planned)).startswith(f"{TEAM}/torch:2.13.0-py3.11-cu12.6-runtime")
    # No plan.json: the policy is planned on the spot.
    policy_only = tmp_path / "policy-only"
    policy_only.mkdir()
    shutil.copy2(planned / "imagesmith.yaml", policy_only / "imagesmith.yaml")
    assert render(torch_default, **conf(policy_only)).startswith("localhost:5000/other/torch:")
    # Neither: the policy embedded in imagesmith; no copier context at all: the same.
    empty = tmp_path / "empty"
    empty.mkdir()
    assert render(torch_default, **conf(empty)) == default_image(framework="torch", python="3.11")
    assert render(torch_default) == default_image(framework="torch", python="3.11")
    help_text = render("imagesmith_image_help('torch', '3.11', 'gpu')", **conf(team_source))
    assert "from the template's base_images/plan.json" in help_text


def test_catalogs_are_cached_per_source_and_see_a_rewritten_plan(team_source: Path, tmp_path: Path) -> None:
    src = tmp_path / "src"
    shutil.copytree(team_source, src)
    first = catalog.for_template(src)
    assert catalog.for_template(src) is first  # one copier run asks many times
    assert catalog.for_template(team_source).choices == first.choices
    assert catalog.for_template(tmp_path).source == EMBEDDED  # another source, another answer
    plan = src / PLAN_JSON
    plan.write_text(plan.read_text(encoding="utf-8").replace(TEAM, "localhost:5000/moved") + "\n")
    assert all(c.tag.startswith("localhost:5000/moved/") for c in catalog.for_template(src).choices)


def test_known_tags_and_aliases_are_accepted_and_kept_in_the_menu(team_source: Path) -> None:
    team = catalog.for_template(team_source)
    runtime = next(c for c in team.choices if c.framework == "torch" and c.variant == "runtime")
    for value in (runtime.tag, *runtime.aliases):
        menu = json.loads(
            render("imagesmith_image_choices('torch', '3.11', 'gpu', keep=v)", v=value, **conf(team_source))
        )
        assert value in menu  # copier only accepts a -d value that is one of the choices


def test_an_unknown_image_is_one_line_naming_the_closest_known_tags(team_source: Path) -> None:
    typo = f"{TEAM}/torch:2.13-runtimee"
    expression = "imagesmith_image_choices('torch', '3.11', 'gpu', keep=v)"
    with pytest.raises(UserMessageError) as refused:
        render(expression, v=typo, **conf(team_source, base_image=typo))
    message = refused.value.message
    assert "\n" not in message
    assert message.startswith(f"imagesmith: base_image: '{typo}' is not a curated image of the template's")
    assert f"closest known: {TEAM}/torch:2.13-runtime" in message
    # The default registry's image is foreign to this team: refused, and the team's own one suggested.
    foreign = "ghcr.io/acme/ml/torch:2.13-runtime"
    with pytest.raises(UserMessageError, match=f"closest known: {re.escape(TEAM)}/torch:2.13-runtime"):
        render(expression, v=foreign, **conf(team_source, base_image=foreign))


def test_a_recorded_image_the_plan_retired_replays_but_a_given_one_does_not(team_source: Path) -> None:
    team = catalog.for_template(team_source)
    retired = f"{TEAM}/torch:2.12.0-py3.11-cu12.6-runtime-bookworm"
    images.check_image(team, retired, recorded=True)  # copier update replays the project's answers
    with pytest.raises(UsageError, match="is not a curated image"):
        images.check_image(team, retired, recorded=False)
    with pytest.raises(UsageError, match="is not a curated image"):
        images.check_image(team, "docker.io/library/python:3.12", recorded=True)
    # In a template render, an answer not passed as data comes from the project's answers file.
    menu = json.loads(
        render("imagesmith_image_choices('torch', '3.11', 'gpu', keep=v)", v=retired, **conf(team_source))
    )
    assert retired in menu


def test_an_unknown_python_is_one_line(team_source: Path) -> None:
    with pytest.raises(
        UserMessageError, match=r"^imagesmith: python_version: no curated image .* '3\.99' \(known: 3\.11\)$"
    ):
        render(
            "imagesmith_python_choices('torch')",
            python_version="3.99",
            **conf(team_source, python_version="3.99"),
        )
    assert json.loads(render("imagesmith_python_choices('torch')", **conf(team_source))) == ["3.11"]


def test_closest_names_something_even_for_another_registry() -> None:
    names = ["r.example/ml/torch:2.13-runtime", "r.example/ml/jax:0.10-runtime", "r.example/ml/base:py3.11"]
    assert images.closest("other.io/x/torch:2.13-runtime", names)[0] == "r.example/ml/torch:2.13-runtime"
    assert len(images.closest("zzz", names)) == 3


def test_rename_migration_moves_the_tracked_file_once(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    (tmp_path / "old.yml").write_text("user: edit\n", encoding="utf-8")
    commit_all(tmp_path, "start")
    assert migrate.rename(tmp_path, "old.yml", "sub/new.yml") is True
    assert (tmp_path / "sub/new.yml").read_text(encoding="utf-8") == "user: edit\n"
    assert git(tmp_path, "status", "--porcelain").strip() == "R  old.yml -> sub/new.yml"
    assert migrate.rename(tmp_path, "old.yml", "sub/new.yml") is False  # idempotent


def test_migration_cli_usage_error_is_one_line_and_exit_2(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "imagesmith.templating.migrate", "move", "a"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "usage:" in done.stderr
