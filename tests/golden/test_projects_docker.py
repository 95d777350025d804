"""Every project type builds FROM a real curated image of the team's registry and runs there.

The team's policy (one CUDA-runtime line, small) is rendered in its template repository and built on
the real engine; a library, a batch and a service project are copied from that repository at a tag,
built FROM the curated image (install steps as root in the project's layer, the container as the image's
non-root user), and then: the project's own tests inside its image, the library's import, the batch
command, and the service answering over HTTP, each behind the strict preflight with stub driver
libraries mounted as the NVIDIA runtime mounts the real ones.
"""

from __future__ import annotations

import json
import socket
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests import docker_harness
from tests.golden import kit
from tests.templates.templates_kit import commit_all, git

VERSION_OF = "import importlib.metadata as m; print(m.version({!r}))"


class Team:
    def __init__(self, repo: Path, runtime_tag: str, digest: str) -> None:
        self.repo = repo
        self.runtime_tag = runtime_tag
        self.digest = digest  # the pushed runtime image's registry digest, from the build manifest


@pytest.fixture(scope="module")
def team(
    tmp_path_factory: pytest.TempPathFactory,
    docker_client: Any,
    os_base: str,
    team_registry: docker_harness.Registry,
) -> Team:
    root = tmp_path_factory.mktemp("projects")
    repo = kit.team_repository(root / "team", kit.team_policy(f"{team_registry.address}/projects", os_base))
    git(repo, "tag", "v1")
    built = kit.imagesmith(
        "build", "--push", "--ca-cert", str(kit.HOST_CA), "--output-dir", str(root / "out"), cwd=repo
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-2000:]
    runtime = next(i for i in kit.plan(repo)["images"] if i["variant"] == "runtime")
    manifest = json.loads((root / "out" / "manifest.json").read_text())
    digest = next(i["digest"] for i in manifest["images"] if i["name"] == runtime["name"])
    assert digest and digest.startswith("sha256:")
    return Team(repo, runtime["tag"], digest)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def new_project(team: Team, dst: Path, kind: str) -> Path:
    copied = kit.copy_project(
        team.repo,
        dst,
        project_type=kind,
        project_name=f"Team {kind}",
        framework="none",
        base_image=team.runtime_tag,
    )
    assert copied.returncode == 0, copied.stdout + copied.stderr
    # Services and batch jobs build FROM exactly the pushed image (its digest); a library follows the tag.
    pinned = f"@{team.digest}" if kind != "library" else ""
    assert f"ARG BASE_IMAGE={team.runtime_tag}{pinned}\n" in (dst / "Dockerfile").read_text()
    git(dst, "init", "-q", "-b", "main")
    commit_all(dst, "start")
    return dst


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.parametrize("kind", ["library", "batch", "service"])
def test_project_builds_from_the_curated_image_and_runs(
    team: Team, docker_client: Any, tmp_path: Path, kind: str
) -> None:
    project = new_project(team, tmp_path / f"team-{kind}", kind)
    with kit.ca_server() as ca_url:
        image = kit.build_project(docker_client, project, f"team-{kind}:test", ca_url=ca_url)
    assert docker_client.images.get(image).attrs["Config"]["User"] == "1000:1000"
    code, output = kit.project_tests(docker_client, image, project)
    assert code == 0, output
    node = kit.gpu_node_mounts(tmp_path / "node", driver="575.57.08", cuda=12090, gpu="NVIDIA L4", cc=(8, 9))
    slug = f"team-{kind}"
    if kind == "library":
        code, out, err = kit.run(docker_client, image, [], volumes=node)  # the image's own CMD
        assert code == 0, out + err
        assert out.strip().splitlines()[-1].startswith("team_library ")
    elif kind == "batch":
        code, out, err = kit.run(docker_client, image, [slug, "2", "4"], volumes=node)
        assert code == 0, out + err
        assert json.loads(out.strip().splitlines()[-1])["count"] == 2
        # Without a driver the strict preflight stops the job before it runs.
        code, out, err = kit.run(docker_client, image, [slug, "2", "4"])
        assert code == 3, out + err
        assert "preflight" in err
    else:
        port = free_port()
        container = docker_client.containers.run(
            image,
            ["python", "-m", "team_service.app", "--host", "127.0.0.1", "--port", str(port)],
            network_mode="host",
            volumes=node,
            detach=True,
        )
        try:
            deadline = time.monotonic() + 60
            answer: dict[str, Any] | None = None
            while time.monotonic() < deadline and answer is None:
                try:
                    request = urllib.request.Request(
                        f"http://127.0.0.1:{port}/v1/score",
                        data=json.dumps({"values": [1, 2, 3]}).encode(),
                        headers={"Content-Type": "application/json"},
                    )
                    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
                    with opener.open(request, timeout=5) as response:
                        answer = json.loads(response.read())
                except OSError:
                    time.sleep(0.5)
            logs = container.logs().decode("utf-8", "replace")
        finally:
            container.remove(force=True)
        assert answer is not None, logs
        assert answer["score"] == 2.0 and answer["model"]["name"] == "team-service", answer


@pytest.mark.docker
@pytest.mark.slow
def test_a_project_cannot_silently_replace_the_images_packages(
    team: Team, docker_client: Any, tmp_path: Path
) -> None:
    project = new_project(team, tmp_path / "guarded", "library")
    # The image pins nvidia-ml-py 13.615.71 (the doctor's); a project that wants an older one fails in one line.
    kit.add_dependency(project, "nvidia-ml-py<13")
    commit_all(project, "wants an older nvidia-ml-py")
    assert kit.refused_by_the_guard(docker_client, project, "guarded:refused") == [
        "imagesmith: team-library[dev] 0.1.0 requires nvidia-ml-py<13, but the curated image pins"
        " nvidia-ml-py==13.615.71 (/opt/imagesmith/constraints.txt): keep the image's nvidia-ml-py (relax the"
        " requirement), or choose another curated image; a deliberate override is `--build-arg IMAGE_PINS=off`"
    ]
    # The deliberate override builds, and the image then has what the project asked for.
    with kit.ca_server() as ca_url:
        image, log = kit.try_build_project(
            docker_client, project, "guarded:override", ca_url=ca_url, IMAGE_PINS="off"
        )
    assert image is not None, log[-3000:]
    assert "IMAGE_PINS=off: installing without the curated image's pins" in log
    code, out, _ = kit.run(
        docker_client, image, ["python", "-c", VERSION_OF.format("nvidia-ml-py")], entrypoint=[]
    )
    assert code == 0 and out.strip().startswith("12."), out
    # A new package is no conflict: it installs next to the image's pins, which stay as they were.
    project2 = new_project(team, tmp_path / "adds", "library")
    kit.add_dependency(project2, "tabulate")
    with kit.ca_server() as ca_url:
        image = kit.build_project(docker_client, project2, "adds:test", ca_url=ca_url)
    code, out, _ = kit.run(
        docker_client,
        image,
        ["python", "-c", "import tabulate; " + VERSION_OF.format("nvidia-ml-py")],
        entrypoint=[],
    )
    assert code == 0 and out.strip() == "13.615.71", out


@pytest.mark.docker
@pytest.mark.slow
def test_bump_moves_the_digest_pin_and_says_what_changed(
    team: Team, docker_client: Any, tmp_path: Path, team_registry: docker_harness.Registry
) -> None:
    project = new_project(team, tmp_path / "pinned", "service")
    bump = [str(kit.VENV_BIN / "imagesmith"), "images", "bump"]
    same = kit.subprocess_run([*bump, "--check"], cwd=project)
    assert same.returncode == 0 and f"up to date: {team.runtime_tag}@{team.digest}" in same.stdout
    # Someone pushes another image under the tag (here the team's base image, bypassing imagesmith's guard).
    base_tag = next(i["tag"] for i in kit.plan(team.repo)["images"] if i["variant"] == "base")
    original = docker_client.images.get(team.runtime_tag)
    docker_client.images.get(base_tag).tag(team.runtime_tag)
    try:
        docker_client.images.push(team.runtime_tag)
        moved = kit.subprocess_run([*bump, "--check"], cwd=project)
        assert moved.returncode == 1, moved.stdout + moved.stderr
        first = moved.stdout.splitlines()[0]
        assert first.startswith(f"{team.runtime_tag}: {team.digest} -> sha256:"), moved.stdout
        assert "  io.imagesmith.cuda: 12.9 -> -" in moved.stdout  # what the move changes, from the labels
        assert f"@{team.digest}" in (project / "Dockerfile").read_text()  # --check changed nothing
        applied = kit.subprocess_run(bump, cwd=project)
        assert applied.returncode == 0, applied.stdout + applied.stderr
        new_digest = first.rsplit(" -> ", 1)[1]
        dockerfile = (project / "Dockerfile").read_text()
        assert f"ARG BASE_IMAGE={team.runtime_tag}@{new_digest}\n" in dockerfile
        assert (
            dockerfile.count("ARG BASE_IMAGE=") == 1 and "USER 1000:1000" in dockerfile
        )  # only the pin moved
        assert kit.subprocess_run([*bump, "--check"], cwd=project).returncode == 0
    finally:
        original.tag(team.runtime_tag)
        docker_client.images.push(team.runtime_tag)
