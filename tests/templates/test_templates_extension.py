"""The copier extension's pieces on their own: resource answers, curated-image menus, the rename migration."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from imagesmith.errors import UsageError
from imagesmith.images.catalog import curated_choices, default_image
from imagesmith.templating import extension, images, migrate, resources
from tests.templates.templates_kit import commit_all, git


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


def test_menus_come_from_the_curated_plan() -> None:
    choices = curated_choices()
    tags = json.loads(extension.image_choices("torch", None, "gpu"))
    assert set(tags) == {c.tag for c in choices}  # every curated tag is offered, best fits first
    torch_runtime = [c.tag for c in choices if c.framework == "torch" and c.variant == "runtime"]
    assert set(tags[: len(torch_runtime)]) == set(torch_runtime)
    pythons = json.loads(extension.python_choices("torch"))
    assert pythons and set(pythons) <= {c.python for c in choices}
    assert extension.default_image("torch", pythons[0], "gpu") == default_image(
        framework="torch", python=pythons[0]
    )
    assert extension.default_image("none", None, "cpu") == default_image(framework=None)


def test_a_retired_curated_tag_stays_replayable_but_foreign_images_do_not() -> None:
    choices = curated_choices()
    repo = choices[0].tag.rsplit(":", 1)[0]
    retired = f"{repo}:0.0.1-retired"
    assert retired in images.image_tags(choices, framework=None, python=None, accelerator="gpu", keep=retired)
    foreign = "docker.io/library/python:3.12"
    assert foreign not in images.image_tags(
        choices, framework=None, python=None, accelerator="gpu", keep=foreign
    )


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
