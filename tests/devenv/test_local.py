"""`imagesmith dev` without an engine: one-line errors with their exit codes, the project found from its answers,
the GPU decision from the engine's runtimes, and the Dockerfile's dev stage as the template renders it."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from imagesmith.devenv import local
from imagesmith.errors import UsageError

Run = Callable[..., subprocess.CompletedProcess[str]]


def make_project(root: Path, slug: str = "my-proj") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / ".copier-answers.yml").write_text(
        f"_commit: v1\nproject_slug: {slug}\npackage_name: my_proj\nproject_type: library\n", encoding="utf-8"
    )
    (root / "Dockerfile").write_text("FROM scratch AS app\n", encoding="utf-8")
    return root


def test_outside_a_project_is_bad_input_naming_the_answers_file(run_cli: Run, tmp_path: Path) -> None:
    for command in (["up"], ["down"], ["status"], ["logs"]):
        result = run_cli("dev", *command, cwd=tmp_path)
        assert result.returncode == 2, (command, result.stderr)
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
        assert "no .copier-answers.yml in" in result.stderr


def test_no_engine_is_an_environment_problem(run_cli: Run, tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    env = {"DOCKER_HOST": f"unix://{tmp_path}/no-such.sock"}
    for command in (["up"], ["down"], ["status"], ["logs"]):
        result = run_cli("dev", *command, cwd=project, env=env)
        assert result.returncode == 3, (command, result.stdout, result.stderr)
        assert result.stderr.startswith("imagesmith: error: no Docker engine answers at unix://")
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_the_project_is_found_from_a_subfolder(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p", slug="team-job")
    (root / "src" / "pkg").mkdir(parents=True)
    project = local.find_project(root / "src" / "pkg")
    assert project.root == root.resolve()
    assert (project.container, project.volume, project.image) == (
        "imagesmith-dev-team-job",
        "imagesmith-dev-team-job-home",
        "registry.example.com/ml/team-job-dev:0.1.0",  # what deploy/dev/ pulls (devenv.remote.dev_image_ref)
    )


def test_answers_without_a_slug_are_refused(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p")
    (root / ".copier-answers.yml").write_text("_commit: v1\n", encoding="utf-8")
    with pytest.raises(UsageError, match="no project_slug"):
        local.find_project(root)


class FakeClient:
    def __init__(self, info: dict[str, Any]) -> None:
        self._info = info

    def info(self) -> dict[str, Any]:
        return self._info


def test_gpus_only_with_the_nvidia_runtime() -> None:
    assert local.engine_gpus(FakeClient({"Runtimes": {"runc": {}, "nvidia": {}}}))[0]
    gpus, why = local.engine_gpus(FakeClient({"Runtimes": {"runc": {}}}))
    assert not gpus and "runs without GPUs" in why and "runc" in why
    cdi = {"Runtimes": {"runc": {}}, "DiscoveredDevices": [{"Source": "cdi", "ID": "nvidia.com/gpu=all"}]}
    assert local.engine_gpus(FakeClient(cdi))[0]


def test_remote_target_without_the_remote_module_is_one_line(
    run_cli: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    project = make_project(tmp_path / "p")
    result = run_cli("dev", "render", "--target", "k8s", cwd=project)
    if importlib.util.find_spec("imagesmith.devenv.remote") is None:
        assert result.returncode == 3 and "imagesmith.devenv.remote is missing" in result.stderr
    assert "Traceback" not in result.stderr


def test_help_says_purge_removes_the_home_without_asking(run_cli: Run) -> None:
    result = run_cli("dev", "down", "--help")
    assert result.returncode == 0
    assert "--purge" in result.stdout and "without asking" in " ".join(result.stdout.split())
    assert "dev" in run_cli("--help").stdout
