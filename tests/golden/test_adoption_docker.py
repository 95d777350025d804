"""The adoption path, as a new platform team lives it, from the wheel: nothing of this checkout is used.

wheel -> fresh venv -> `imagesmith init` (non-interactive) -> `images lock` + `images render` -> git -> the
rendered CI workflow, every step, on a clean clone per job in `needs:` order (its install step takes the
pinned release from the package index, the OS base comes through the mirror input, the proxy CA through its
input) -> pushed to a local registry -> `git tag v1` -> `copier copy` of a batch and a service project ->
`docker build` of each -> the next imagesmith release -> `imagesmith upgrade --check` / `upgrade` (the team's
edits kept, new immutable tags, no refused push) -> `git tag v2` -> `copier update` of both projects, refused
first by the older imagesmith.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests import docker_harness
from tests.golden import kit as golden
from tests.team import kit
from tests.templates.templates_kit import answers, commit_all, git

MIRROR_IMAGE = "library/debian:bookworm-slim"


def fresh_runner(client: Any, prefix: str) -> None:
    """A new CI runner has none of the team's images."""
    for image in client.images.list():
        refs = [*image.tags, *image.attrs.get("RepoDigests", [])]
        if any(ref.startswith(prefix) for ref in refs):
            client.images.remove(image.id, force=True)


def run_workflow(
    team: Path, client: Any, prefix: str, work: Path, *, secrets: dict[str, str], env: dict[str, str]
) -> dict[str, Any]:
    workflow = yaml.safe_load((team / ".github" / "workflows" / "images.yml").read_text())
    manifests: dict[str, Any] = {}
    for job_id in kit.jobs_in_order(workflow):
        fresh_runner(client, prefix)
        steps = kit.run_job(
            workflow["jobs"][job_id], clone_from=team, work=work / job_id, secrets=secrets, base_env=env
        )
        failed = [s for s in steps if s.returncode != 0]
        assert not failed, f"{job_id}: step {failed[0].name!r} failed:\n{failed[0].output[-4000:]}"
        assert len(steps) == len(workflow["jobs"][job_id]["steps"])  # every step ran, install steps included
        name = workflow["jobs"][job_id]["name"]
        manifest = json.loads((work / job_id / "checkout" / "build" / name / "manifest.json").read_text())
        assert [i["name"] for i in manifest["images"]] == [name]  # a job builds its own image only
        manifests[name] = manifest["images"][0]
    return manifests


def new_project(venv: kit.Venv, team: Path, dst: Path, kind: str, base_image: str) -> Path:
    copied = venv.run(
        "copier", "copy", "--trust", "--defaults", "--vcs-ref=v1", "-d", f"project_type={kind}",
        "-d", f"project_name=Adopt {kind}", "-d", "framework=none", "-d", f"base_image={base_image}",
        str(team), str(dst), cwd=dst.parent,
    )  # fmt: skip
    assert copied.returncode == 0, copied.stdout + copied.stderr
    git(dst, "init", "-q", "-b", "main")
    commit_all(dst, "start from the team's template")
    return dst


@pytest.mark.docker
@pytest.mark.slow
def test_a_team_adopts_imagesmith_from_the_wheel_and_upgrades(
    tmp_path: Path,
    docker_client: Any,
    os_base: str,
    team_registry: docker_harness.Registry,
    wheels: dict[str, Path],
) -> None:
    version = kit.current_version()
    wheelhouse = wheels[version].parent
    env = kit.machine_env(tmp_path / "home", wheelhouse)
    v1 = kit.make_venv(tmp_path / "venv-v1", f"imagesmith=={version}", env)
    where = v1.run("python", "-c", "import imagesmith; print(imagesmith.__file__)", cwd=tmp_path)
    assert where.returncode == 0 and str(kit.REPO) not in where.stdout, where.stdout  # the wheel, not us

    # 1. The team's repository, from the wheel, with non-interactive answers.
    registry = f"{team_registry.address}/adopt"
    init = v1.run(
        "imagesmith", "init", "team", "--team-name", "Adopters", "--registry", registry,
        "--framework", "cuda==12.9", "--variant", "runtime", "--node", "name=l4,driver=575.57.08,gpu=L4",
        cwd=tmp_path,
    )  # fmt: skip
    assert init.returncode == 0, init.stdout + init.stderr
    team = tmp_path / "team"
    locked = v1.run("imagesmith", "images", "lock", "--ca-cert", str(kit.HOST_CA), cwd=team)
    assert locked.returncode == 0, locked.stdout + locked.stderr
    for lock in (team / "base_images").glob("*/requirements.lock"):  # no temporary path in a committed file
        assert str(tmp_path) not in lock.read_text() and "/tmp/" not in lock.read_text(), lock
    rendered = v1.run("imagesmith", "images", "render", cwd=team)
    assert rendered.returncode == 0, rendered.stdout + rendered.stderr
    git(team, "init", "-q", "-b", "main")
    commit_all(team, "Team repository from imagesmith init")
    assert not [f for f in git(team, "ls-files").split() if f.endswith(".py")]

    # 2. Its CI, as rendered: every step on a clean clone; the OS base through the mirror input.
    mirror = f"{team_registry.address}/mirror"
    docker_client.images.get(os_base).tag(f"{mirror}/library/debian", "bookworm-slim")
    docker_client.images.push(f"{mirror}/library/debian", "bookworm-slim")
    docker_client.images.remove(f"{mirror}/{MIRROR_IMAGE}")
    secrets = {"OS_BASE_MIRROR": mirror}
    proxy_cas = sorted(Path("/usr/local/share/ca-certificates").glob("*.crt"))
    if proxy_cas:  # this machine's TLS-intercepting proxy: its CA is the input a team behind one sets
        secrets["PROXY_CA_PEM"] = "".join(p.read_text() for p in proxy_cas)
    # A runner trusts what a fresh one trusts: the CA comes from the workflow's input, not this machine's pip.
    trusting = ("PIP_CERT", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
    runner_env = {k: v for k, v in env.items() if k not in trusting} | {"PIP_CONFIG_FILE": "/dev/null"}
    built = run_workflow(
        team, docker_client, f"{registry}/", tmp_path / "ci-v1", secrets=secrets, env=runner_env
    )
    plan = golden.plan(team)
    assert {i["name"]: i["status"] for i in built.values()} == {i["name"]: "built" for i in plan["images"]}
    runtime = next(i for i in plan["images"] if i["variant"] == "runtime")
    assert runtime["tag"].endswith("-r1")
    pulled = docker_client.images.pull(runtime["tag"])
    assert pulled.labels["io.imagesmith.version"] == version
    code, out, _ = golden.run(docker_client, runtime["tag"], ["imagesmith", "--version"], entrypoint=[])
    assert code == 0 and out.strip() == f"imagesmith, version {version}"  # the pinned release is inside
    git(team, "tag", "v1")

    # 3. Two projects from the team's repository, each built FROM the pushed image.
    projects = {
        kind: new_project(v1, team, tmp_path / f"adopt-{kind}", kind, runtime["tag"])
        for kind in ("batch", "service")
    }
    for kind, project in projects.items():
        assert (
            f"ARG BASE_IMAGE={runtime['tag']}@{built[runtime['name']]['digest']}\n"
            in (project / "Dockerfile").read_text()
        )
        with golden.ca_server() as ca_url:
            golden.build_project(docker_client, project, f"adopt-{kind}:v1", ca_url=ca_url)

    # 4. The next imagesmith release: the repository refuses it until upgraded.
    v2 = kit.make_venv(tmp_path / "venv-v2", f"imagesmith=={kit.NEXT}", env)
    skew = v2.run("imagesmith", "images", "plan", cwd=team)
    assert skew.returncode == 3 and "imagesmith upgrade" in skew.stderr, skew.stderr
    check = v2.run("imagesmith", "upgrade", "--check", cwd=team)
    assert check.returncode == 1, check.stdout + check.stderr
    assert f"imagesmith {version} -> {kit.NEXT}" in check.stdout
    assert f"~ tag {runtime['tag']} -> {runtime['tag'][:-3]}-r2" in check.stdout
    assert "M templates/base/dockerignore.jinja" in check.stdout
    assert git(team, "status", "--porcelain") == ""  # --check wrote nothing
    # The team's own edit of a project template, which the upgrade must keep.
    dockerfile = team / "templates" / "base" / "Dockerfile.jinja"
    dockerfile.write_text(dockerfile.read_text().replace(
        "FROM ${BASE_IMAGE} AS app\n", 'FROM ${BASE_IMAGE} AS app\nLABEL org.example.team="adopters"\n', 1
    ))  # fmt: skip
    commit_all(team, "our label")
    upgraded = v2.run("imagesmith", "upgrade", cwd=team)
    assert upgraded.returncode == 0, upgraded.stdout + upgraded.stderr
    policy = yaml.safe_load((team / "imagesmith.yaml").read_text())
    assert policy["imagesmith-version"] == kit.NEXT and policy["release"] == 2
    assert 'LABEL org.example.team="adopters"' in dockerfile.read_text()  # the team's edit, kept
    assert kit.NEXT_DOCKERIGNORE_LINE in (team / "templates" / "base" / "dockerignore.jinja").read_text()
    assert kit.NEXT_GITIGNORE_LINE in (team / ".gitignore").read_text()
    assert (
        f'python -m pip install "imagesmith=={kit.NEXT}"'
        in (team / ".github" / "workflows" / "images.yml").read_text()
    )
    assert v2.run("imagesmith", "images", "render", "--check", cwd=team).returncode == 0
    assert v2.run("imagesmith", "upgrade", "--check", cwd=team).returncode == 0
    older = v1.run("imagesmith", "images", "plan", cwd=team)
    assert older.returncode == 3 and f"older than the {kit.NEXT}" in older.stderr
    commit_all(team, f"imagesmith {kit.NEXT}")
    git(team, "tag", "v2")

    # 5. The upgraded images: new immutable tags, pushed (nothing refused), carrying the new release.
    rebuilt = v2.run(
        "imagesmith", "build", "--push", "--base-image", f"bookworm={os_base}", "--ca-cert", str(kit.HOST_CA),
        "--output-dir", str(tmp_path / "build-v2"), cwd=team,
    )  # fmt: skip
    assert rebuilt.returncode == 0, rebuilt.stdout[-3000:] + rebuilt.stderr[-2000:]
    new_runtime = next(i for i in golden.plan(team)["images"] if i["variant"] == "runtime")
    assert new_runtime["tag"] == runtime["tag"][:-3] + "-r2"
    assert docker_client.images.pull(new_runtime["tag"]).labels["io.imagesmith.version"] == kit.NEXT

    # 6. The projects follow the template release; an older imagesmith is stopped at the door.
    for kind, project in projects.items():
        refused = v1.run("copier", "update", "--trust", "--defaults", "--vcs-ref=v2", cwd=project)
        assert refused.returncode != 0 and f"older than the {kit.NEXT}" in refused.stderr, refused.stderr
        assert "Traceback" not in refused.stderr
        assert git(project, "status", "--porcelain") == ""
        updated = v2.run(
            "copier", "update", "--trust", "--defaults", "--vcs-ref=v2", "-d", f"base_image={new_runtime['tag']}",
            cwd=project,
        )  # fmt: skip
        assert updated.returncode == 0, updated.stdout + updated.stderr
        assert answers(project)["_commit"] == "v2" and answers(project)["base_image"] == new_runtime["tag"]
        assert kit.NEXT_DOCKERIGNORE_LINE in (project / ".dockerignore").read_text()
        assert 'LABEL org.example.team="adopters"' in (project / "Dockerfile").read_text()
        commit_all(project, "template v2")
        with golden.ca_server() as ca_url:
            golden.build_project(docker_client, project, f"adopt-{kind}:v2", ca_url=ca_url)
