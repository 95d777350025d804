"""The team's policy drives the templates: a template repository that is also the policy repository.

Real git repositories, real tags, real copier (API and CLI). The team pushes to ``localhost:5000/team``;
its template releases: v1 (the default fleet), v2 (the old GPU nodes retired, so the CUDA 12.6 torch
image leaves the plan, plus a Dockerfile change), v3 (the registry moved).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from copier.errors import UserMessageError

from imagesmith.images.catalog import Catalog, default_image, from_plan_json
from imagesmith.templating import images
from tests.templates.templates_kit import (
    PLAN_JSON,
    answers,
    clone_template,
    commit_all,
    copier_cli,
    copy,
    git,
    set_policy,
    start_project,
    status,
    team_policy,
    update,
)

TEAM = "localhost:5000/team"
MOVED = "localhost:5000/platform"
OLD_GPU_NODES = ("p3-v100", "g4dn-t4", "p4d-a100")
TORCH_CU126 = f"{TEAM}/torch:2.13.0-py3.11-cu12.6-runtime-bookworm-r1"
TORCH_CU130 = f"{TEAM}/torch:2.13.0-py3.11-cu13.0-runtime-bookworm-r1"
V2_LABEL = 'LABEL org.opencontainers.image.vendor="team"\n'


@pytest.fixture(scope="module")
def team_template(tmp_path_factory: pytest.TempPathFactory, git_identity: None) -> Path:
    template = clone_template(tmp_path_factory.mktemp("team") / "team-templates", policy=team_policy(TEAM))
    git(template, "tag", "v1")

    set_policy(template, team_policy(TEAM, drop_nodes=OLD_GPU_NODES))
    dockerfile = template / "templates/base/Dockerfile.jinja"
    text = dockerfile.read_text(encoding="utf-8")
    assert "FROM ${BASE_IMAGE} AS app\n" in text
    dockerfile.write_text(
        text.replace("FROM ${BASE_IMAGE} AS app\n", f"FROM ${{BASE_IMAGE}} AS app\n{V2_LABEL}")
    )
    commit_all(template, "v2: old GPU nodes retired, vendor label")
    git(template, "tag", "v2")

    set_policy(template, team_policy(MOVED, drop_nodes=OLD_GPU_NODES))
    commit_all(template, "v3: registry moved")
    git(template, "tag", "v3")
    return template


def plan_at(template: Path, ref: str, tmp_path: Path) -> Catalog:
    """The plan the template repository held at ``ref``."""
    path = tmp_path / f"plan-{ref}.json"
    path.write_text(git(template, "show", f"{ref}:{PLAN_JSON.as_posix()}"), encoding="utf-8")
    return from_plan_json(path)


def dockerfile_base(project: Path) -> str:
    lines = (project / "Dockerfile").read_text(encoding="utf-8").splitlines()
    return next(line for line in lines if line.startswith("ARG BASE_IMAGE=")).removeprefix("ARG BASE_IMAGE=")


def refused_in_one_line(done: subprocess.CompletedProcess[str]) -> str:
    """copier's CLI refused: non-zero exit, no traceback, one line on stderr; returns that line."""
    assert done.returncode != 0, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr, done.stderr
    message = done.stderr.strip()
    assert message.count("\n") == 0, message
    return message


@pytest.mark.parametrize("kind", ["library", "service"])
def test_the_project_is_from_the_team_registry(team_template: Path, tmp_path: Path, kind: str) -> None:
    project = copy(team_template, tmp_path / "p", ref="v1", project_type=kind)
    assert answers(project)["base_image"] == TORCH_CU126
    assert dockerfile_base(project) == TORCH_CU126
    for path in project.rglob("*"):
        if path.is_file():
            assert "ghcr.io/acme" not in path.read_text(encoding="utf-8"), path


@pytest.mark.parametrize("framework", ["torch", "jax", "tensorflow", "none"])
def test_the_default_is_the_runtime_image_on_most_fleet_nodes(
    team_template: Path, tmp_path: Path, framework: str
) -> None:
    plan = plan_at(team_template, "v1", tmp_path)
    fw = None if framework == "none" else framework
    runtimes = [c for c in plan.choices if c.framework == fw and c.variant == "runtime"]
    expected = max(runtimes, key=lambda c: (len(c.nodes), tuple(int(p) for p in (c.cuda or "0").split("."))))
    project = copy(team_template, tmp_path / "p", ref="v1", framework=framework)
    assert answers(project)["base_image"] == expected.tag == default_image(framework=fw, catalog=plan)
    if framework == "torch":
        # cu12.6 runs on 5 of the 6 fleet nodes, cu13.0 (the newer CUDA) on 3: coverage wins.
        by_cuda = {c.cuda: len(c.nodes) for c in runtimes}
        assert (expected.tag, by_cuda, len(plan.fleet)) == (TORCH_CU126, {"12.6": 5, "13.0": 3}, 6)


def test_the_question_help_says_why_the_default(team_template: Path, tmp_path: Path) -> None:
    # What the interactive prompt prints above the menu: copier renders `help` as a template.
    from copier._main import Worker
    from copier._user_data import Question

    with Worker(
        src_path=str(team_template),
        dst_path=tmp_path / "p",
        vcs_ref="v1",
        defaults=True,
        unsafe=True,
        quiet=True,
    ) as worker:
        worker.run_copy()
        question = Question(
            var_name="base_image",
            answers=worker.answers,
            context=worker._render_context(),
            jinja_env=worker.jinja_env,
            settings=worker.settings,
            **worker.template.questions_data["base_image"],
        )
        message = question.get_message()
    assert message.strip() == (
        f"Curated base image (from the template's base_images/plan.json); default {TORCH_CU126}: "
        "runs on 5 of 6 fleet nodes (cu13.0 image: 3)"
    )


@pytest.mark.parametrize("value", [TORCH_CU130, f"{TEAM}/torch:2.13-runtime", f"{TEAM}/base:py3.11"])
def test_a_tag_or_alias_of_the_team_plan_is_accepted(team_template: Path, tmp_path: Path, value: str) -> None:
    project = copy(team_template, tmp_path / "p", ref="v1", base_image=value)
    assert answers(project)["base_image"] == value
    assert dockerfile_base(project) == value


def test_a_tag_given_on_the_command_line_is_accepted(team_template: Path, tmp_path: Path) -> None:
    dst = tmp_path / "p"
    args = ["copy", "--trust", "--defaults", "--quiet", "-r", "v1", "-d", f"base_image={TORCH_CU130}"]
    done = copier_cli(*args, str(team_template), str(dst), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert dockerfile_base(dst) == TORCH_CU130


@pytest.mark.parametrize(
    ("value", "suggested"),
    [
        (f"{TEAM}/torch:2.13-runtimee", f"{TEAM}/torch:2.13-runtime"),  # a typo
        ("ghcr.io/acme/ml/torch:2.13-runtime", f"{TEAM}/torch:2.13-runtime"),  # not this team's registry
        ("python:3.12", f"{TEAM}/"),  # not a curated image at all
    ],
)
def test_an_unknown_image_is_refused_in_one_line(
    team_template: Path, tmp_path: Path, value: str, suggested: str
) -> None:
    dst = tmp_path / "p"
    args = ["copy", "--trust", "--defaults", "-r", "v1", "-d", f"base_image={value}"]
    message = refused_in_one_line(copier_cli(*args, str(team_template), str(dst), cwd=tmp_path))
    assert message.startswith(f"imagesmith: base_image: '{value}' is not a curated image of ")
    assert f"closest known: {suggested}" in message
    assert not (dst / "Dockerfile").exists()
    with pytest.raises(UserMessageError, match="closest known"):
        copy(team_template, tmp_path / "api", ref="v1", base_image=value)


def test_an_unknown_python_is_refused_in_one_line(team_template: Path, tmp_path: Path) -> None:
    args = ["copy", "--trust", "--defaults", "-r", "v1", "-d", "python_version=3.99"]
    message = refused_in_one_line(copier_cli(*args, str(team_template), str(tmp_path / "p"), cwd=tmp_path))
    assert message == (
        "imagesmith: python_version: no curated image of the template's base_images/plan.json ships "
        "Python '3.99' (known: 3.11)"
    )


@pytest.mark.parametrize("keeps", ["policy", "nothing"])
def test_without_a_rendered_plan_the_policy_then_the_embedded_default_is_used(
    tmp_path: Path, keeps: str
) -> None:
    template = clone_template(tmp_path / "tpl", policy=team_policy(TEAM))
    git(template, "rm", "-q", "-r", "base_images", ".github", "docker-bake.json")
    if keeps == "nothing":
        git(template, "rm", "-q", "imagesmith.yaml")
    commit_all(template, f"keep only: {keeps}")
    git(template, "tag", "v1")
    project = copy(template, tmp_path / "p", ref="v1")
    expected = TORCH_CU126 if keeps == "policy" else default_image(framework="torch", python="3.11")
    assert dockerfile_base(project) == expected


def test_update_to_a_release_that_retires_the_image_keeps_the_project_on_it(
    team_template: Path, tmp_path: Path
) -> None:
    project = start_project(team_template, tmp_path / "p", ref="v1", project_type="batch")
    assert TORCH_CU126 not in plan_at(team_template, "v2", tmp_path).known()

    update(project, ref="v2")

    assert git(project, "ls-files", "-u") == ""
    recorded = answers(project)
    assert (recorded["_commit"], recorded["base_image"]) == ("v2", TORCH_CU126)
    dockerfile = (project / "Dockerfile").read_text(encoding="utf-8")
    assert V2_LABEL in dockerfile and dockerfile_base(project) == TORCH_CU126
    # A new project of v2 gets v2's default: the CUDA 13.0 image now covers the whole (smaller) fleet.
    fresh = copy(team_template, tmp_path / "fresh", ref="v2")
    assert answers(fresh)["base_image"] == TORCH_CU130
    help_text = images.explain_default(
        plan_at(team_template, "v2", tmp_path), framework="torch", python="3.11", accelerator="gpu"
    )
    assert help_text.endswith("runs on 3 of 3 fleet nodes")


def test_update_across_a_registry_move_asks_for_a_new_image_in_one_line(
    team_template: Path, tmp_path: Path
) -> None:
    project = start_project(team_template, tmp_path / "p", ref="v1", project_type="library")
    moved = plan_at(team_template, "v3", tmp_path)
    new_base = images.default_tag(moved.choices, framework="torch", python="3.11", accelerator="gpu")
    assert new_base.startswith(f"{MOVED}/torch:")

    done = copier_cli("update", "--trust", "--defaults", "--quiet", "--vcs-ref=v3", cwd=project)
    message = refused_in_one_line(done)
    assert f"'{TORCH_CU126}' is not a curated image" in message and f"closest known: {MOVED}/" in message
    assert status(project) == ""
    assert answers(project)["_commit"] == "v1"

    # Choosing one of the new images goes through: the v1 replay used v1's plan, the new render v3's.
    update(project, ref="v3", base_image=new_base)
    assert git(project, "ls-files", "-u") == ""
    assert (answers(project)["_commit"], answers(project)["base_image"]) == ("v3", new_base)
    assert dockerfile_base(project) == new_base


def test_update_with_an_unknown_image_is_refused_in_one_line(team_template: Path, tmp_path: Path) -> None:
    project = start_project(team_template, tmp_path / "p", ref="v1", project_type="library")
    done = copier_cli(
        "update", "--trust", "--defaults", "--quiet", "--vcs-ref=v2", "-d", "base_image=nope", cwd=project
    )
    assert "'nope' is not a curated image" in refused_in_one_line(done)
    assert status(project) == ""
    assert answers(project)["_commit"] == "v1"
