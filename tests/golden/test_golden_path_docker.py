"""The golden path, end to end, with real parts only.

A team's policy names a registry on localhost -> `imagesmith images render` in the team's template
repository -> `imagesmith build --push` of the base and a real torch image from PyPI (runtime + devel,
multi-GB) -> `copier copy` of a batch project from the template repository at a tag -> `docker build`
of the project FROM the pushed curated image -> the project's tests inside its image -> the batch command
and `imagesmith doctor --json` inside, with stub driver libraries mounted as the NVIDIA runtime mounts
them -> a template release and `copier update` -> rebuild. Takes minutes (a 5 GB image is pulled from
PyPI, built, smoke-tested and pushed); `make test` runs it, so CI does.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests import docker_harness
from tests.golden import kit
from tests.templates.templates_kit import answers, commit_all, git


@pytest.mark.docker
@pytest.mark.slow
def test_policy_to_registry_to_project_and_update(
    tmp_path: Path, docker_client: Any, os_base: str, team_registry: docker_harness.Registry
) -> None:
    # 1. The team's repository: its policy, rendered by `images render`, committed and tagged.
    team = kit.team_repository(
        tmp_path / "team-templates",
        kit.team_policy(
            f"{team_registry.address}/team",
            os_base,
            frameworks='torch: ["==2.13.0"]',
            fleet=(
                '{name: p6-b200, driver: "580.82.07", gpu: B200}',
                '{name: p5-h100, driver: "580.82.07", gpu: H100}',
            ),
            variants="[runtime, devel]",
        ),
    )
    git(team, "tag", "v1")
    planned = {image["variant"]: image for image in kit.plan(team)["images"]}
    runtime, devel = planned["runtime"], planned["devel"]
    assert runtime["tag"].startswith(f"{team_registry.address}/team/torch:2.13.0-py3.11-cu13.0-runtime")

    # 2. The curated images, built for real from PyPI, smoke-tested, pushed to the team's registry.
    built = kit.imagesmith(
        "build",
        "--push",
        "--ca-cert",
        str(kit.HOST_CA),
        "--output-dir",
        str(tmp_path / "curated"),
        cwd=team,
    )
    assert built.returncode == 0, built.stdout[-4000:] + built.stderr[-2000:]
    manifest = {
        i["name"]: i for i in json.loads((tmp_path / "curated" / "manifest.json").read_text())["images"]
    }
    for image in kit.plan(team)["images"]:
        result = manifest[image["name"]]
        assert result["status"] in ("built", "unchanged"), result
        tests = {t["name"]: t for t in result["tests"]}
        assert all(t["ok"] for t in tests.values()), tests
        # Every tag is in the registry, and it is the image that was tested.
        body, _headers = team_registry.get(
            f"/v2/team/{image['tag'].split('/team/', 1)[1].replace(':', '/manifests/', 1)}",
            accept="application/vnd.docker.distribution.manifest.v2+json",
        ) or (b"", {})
        assert body, image["tag"]
        assert json.loads(body)["config"]["digest"] == result["image_id"]
    runtime_tests = {t["name"]: t for t in manifest[runtime["name"]]["tests"]}
    # The framework's own word equals the labels (torch.version.cuda, cudnn.version()).
    assert "reports cuda 13.0, cudnn 9." in runtime_tests["framework-versions"]["detail"]
    assert runtime_tests["cuda-duplicates"]["ok"]
    devel_tests = {t["name"]: t for t in manifest[devel["name"]]["tests"]}
    assert {"nvcc-compile", "torch-extension", "framework-versions", "doctor"} <= set(devel_tests)
    assert "CUDA_HOME=/usr/local/cuda" in devel_tests["torch-extension"]["detail"]

    # 3. A batch project from the team's template repository at its tag: FROM the team's image.
    project = tmp_path / "golden-batch"
    copied = kit.copy_project(
        team, project, project_type="batch", project_name="Golden Batch", framework="torch"
    )
    assert copied.returncode == 0, copied.stdout + copied.stderr
    assert answers(project)["base_image"] == runtime["tag"]
    # A batch job builds FROM exactly the image that was pushed and tested: its registry digest.
    assert (
        f"ARG BASE_IMAGE={runtime['tag']}@{manifest[runtime['name']]['digest']}\n"
        in (project / "Dockerfile").read_text()
    )
    # The project's constraints for local development and CI are the image's: torch at the image's pin.
    constraints = (project / ".imagesmith" / "constraints.txt").read_text()
    assert "\ntorch==2.13.0\n" in constraints and "nvidia-cudnn-cu13==" in constraints
    git(project, "init", "-q", "-b", "main")
    commit_all(project, "start from the template")

    # 3b. The curated image guards its stack: a project asking for another torch fails in one line.
    kit.add_dependency(project, "torch>=2.14")
    assert kit.refused_by_the_guard(docker_client, project, "golden-batch:refused") == [
        "imagesmith: golden-batch[dev] 0.1.0 requires torch>=2.14, but the curated image pins torch==2.13.0"
        " (/opt/imagesmith/constraints.txt): keep the image's torch (relax the requirement), or choose another"
        " curated image; a deliberate override is `--build-arg IMAGE_PINS=off`"
    ]
    git(project, "checkout", "--", "pyproject.toml")
    # A new package is no conflict (the project image below is built with it).
    kit.add_dependency(project, "tabulate")
    commit_all(project, "tabulate for the report")

    # 4. The project image, built FROM the pushed curated image: its tests, its command, the doctor.
    with kit.ca_server() as ca_url:
        image_id = kit.build_project(docker_client, project, "golden-batch:v1", ca_url=ca_url)
    code, output = kit.project_tests(docker_client, image_id, project)
    assert code == 0, output
    assert " passed" in output
    code, out, _err = kit.run(
        docker_client,
        image_id,
        ["python", "-c", "import tabulate, torch; print(torch.__version__)"],
        entrypoint=[],
    )
    assert code == 0 and out.strip() == "2.13.0+cu130", out  # the image's torch, not a newer one
    node = kit.gpu_node_mounts(
        tmp_path / "node", driver="580.95.05", cuda=13000, gpu="NVIDIA H100 80GB HBM3", cc=(9, 0)
    )
    code, out, err = kit.run(docker_client, image_id, ["golden-batch", "1", "2", "3"], volumes=node)
    assert code == 0, out + err  # the preflight (a strict doctor) passed, then the command ran
    assert json.loads(out.strip().splitlines()[-1])["count"] == 3
    code, out, err = kit.run(docker_client, image_id, ["imagesmith", "doctor", "--json"], volumes=node)
    assert code == 0, out + err
    report = json.loads(out[out.index("{") :])
    assert not [f for f in report["findings"] if f["severity"] == "error"], report["findings"]
    libraries = {lib["name"].split(".so")[0]: lib for lib in report["libraries"]}
    assert (
        libraries["libcudart"]["version"].startswith("13.0") and libraries["libcudart"]["origin"] == "wheel"
    )
    assert "/site-packages/nvidia/cu13/lib/" in os.path.normpath(libraries["libcudart"]["path"])
    user = kit.run(docker_client, image_id, ["id", "-u"], entrypoint=[])[1].strip()
    assert user == "1000"

    # 5. A template release; the project updates (keeping its own edit) and rebuilds.
    dockerfile = team / "templates" / "base" / "Dockerfile.jinja"
    text = dockerfile.read_text()
    dockerfile.write_text(
        text.replace(
            "FROM ${BASE_IMAGE} AS app\n",
            'FROM ${BASE_IMAGE} AS app\nLABEL org.opencontainers.image.title="{{ project_name }}"\n',
            1,
        )
    )
    commit_all(team, "v2: the project image names itself")
    git(team, "tag", "v2")
    readme = project / "README.md"
    readme.write_text(readme.read_text() + "\nOur own notes.\n")
    commit_all(project, "our notes")
    updated = kit.copier("update", "--trust", "--defaults", "--vcs-ref=v2", cwd=project)
    assert updated.returncode == 0, updated.stdout + updated.stderr
    assert "Our own notes." in readme.read_text()
    assert 'LABEL org.opencontainers.image.title="Golden Batch"' in (project / "Dockerfile").read_text()
    assert answers(project)["_commit"] == "v2"
    with kit.ca_server() as ca_url:
        rebuilt = kit.build_project(docker_client, project, "golden-batch:v2", ca_url=ca_url)
    assert docker_client.images.get(rebuilt).labels["org.opencontainers.image.title"] == "Golden Batch"
    code, output = kit.project_tests(docker_client, rebuilt, project)
    assert code == 0, output
