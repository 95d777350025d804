"""The rendered CI workflow, run as CI runs it: one fresh runner per job, in `needs:` order, against a
real registry. Every image is built exactly once, parents are pulled by digest and never rebuilt or
re-pushed, a re-run builds nothing, and an immutable tag never moves to another digest."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests import docker_harness
from tests.golden import kit

PUSH_EVENT = re.compile(r"\$\{\{ github\.event_name != 'pull_request' && '([^']*)' \|\| '([^']*)' \}\}")


def jobs_in_order(workflow: dict[str, Any]) -> list[tuple[str, str]]:
    """(job id, build command for a push event), parents first as `needs:` orders them."""
    jobs = workflow["jobs"]
    done: list[str] = []
    while len(done) < len(jobs):
        for job_id, job in jobs.items():
            if job_id not in done and all(need in done for need in job.get("needs", [])):
                done.append(job_id)
    ordered = []
    for job_id in done:
        builds = [s for s in jobs[job_id]["steps"] if str(s.get("name", "")).startswith("Build")]
        assert len(builds) == 1, jobs[job_id]["steps"]
        ordered.append((job_id, PUSH_EVENT.sub(lambda m: m.group(1), builds[0]["run"])))
    return ordered


def fresh_runner(client: Any, repository_prefix: str) -> None:
    """A new CI runner has none of the team's images: remove every local copy of them."""
    for image in client.images.list():
        refs = [*image.tags, *image.attrs.get("RepoDigests", [])]
        if any(ref.startswith(repository_prefix) for ref in refs):
            client.images.remove(image.id, force=True)


def run_workflow(team: Path, client: Any, prefix: str, out: Path) -> dict[str, dict[str, Any]]:
    workflow = yaml.safe_load((team / ".github" / "workflows" / "images.yml").read_text())
    results: dict[str, dict[str, Any]] = {}
    for job_id, command in jobs_in_order(workflow):
        fresh_runner(client, prefix)
        args = shlex.split(command)
        assert args[:2] == ["imagesmith", "build"] and "--parents-from-registry" in args and "--push" in args
        output = out / job_id
        done = kit.imagesmith(*args[1:], "--ca-cert", str(kit.HOST_CA), "--output-dir", str(output), cwd=team)
        assert done.returncode == 0, f"{job_id}: {done.stdout[-3000:]}{done.stderr[-2000:]}"
        images = json.loads((output / "manifest.json").read_text())["images"]
        assert [i["name"] for i in images] == [args[2]], "a job builds only its own image"
        results[job_id] = images[0]
    return results


def registry_digest(registry: docker_harness.Registry, tag: str) -> str:
    repository, _, name = tag.partition("/")[2].rpartition(":")
    answer = registry.get(
        f"/v2/{repository}/manifests/{name}", accept="application/vnd.docker.distribution.manifest.v2+json"
    )
    assert answer is not None, tag
    return answer[1]["Docker-Content-Digest"]


@pytest.mark.docker
@pytest.mark.slow
def test_generated_workflow_builds_each_image_once(
    tmp_path: Path, docker_client: Any, os_base: str, team_registry: docker_harness.Registry
) -> None:
    team = kit.team_repository(tmp_path / "team", kit.team_policy(f"{team_registry.address}/ci", os_base))
    prefix = f"{team_registry.address}/ci/"
    planned = {i["name"]: i for i in kit.plan(team)["images"]}
    assert len(planned) == 2

    first = run_workflow(team, docker_client, prefix, tmp_path / "run1")
    assert sorted(r["status"] for r in first.values()) == ["built", "built"]
    digests = {}
    for result in first.values():
        image = planned[result["name"]]
        digest = registry_digest(team_registry, image["tag"])
        assert result["repo_digests"] == [f"{image['tag'].rpartition(':')[0]}@{digest}"]
        for alias in image["aliases"]:
            assert registry_digest(team_registry, alias) == digest, alias
        digests[image["tag"]] = digest
    # The child was built FROM its parent's pushed digest, pulled on its own fresh runner.
    child = next(r for r in first.values() if r["parent"])
    parent_tag = planned[child["parent"]]["tag"]
    assert child["base"] == f"{parent_tag.rpartition(':')[0]}@{digests[parent_tag]}"

    # A re-run of the same commit builds and pushes nothing; every tag still names the same digest.
    second = run_workflow(team, docker_client, prefix, tmp_path / "run2")
    assert sorted(r["status"] for r in second.values()) == ["unchanged", "unchanged"]
    assert all(not r["pushed"] for r in second.values())
    for tag, digest in digests.items():
        assert registry_digest(team_registry, tag) == digest

    # Changed inputs under the same immutable tag: built and tested, but the push is refused.
    base = next(i for i in planned.values() if not i["parent"])
    dockerfile = team / "base_images" / base["name"] / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + "# a change that keeps the tag\n")
    fresh_runner(docker_client, prefix)
    refused = kit.imagesmith(
        "build",
        base["name"],
        "--parents-from-registry",
        "--push",
        "--ca-cert",
        str(kit.HOST_CA),
        "--output-dir",
        str(tmp_path / "refused"),
        cwd=team,
    )
    assert refused.returncode == 1, refused.stdout + refused.stderr
    result = json.loads((tmp_path / "refused" / "manifest.json").read_text())["images"][0]
    assert result["status"] == "failed"
    assert digests[base["tag"]] in result["error"] and result["image_id"] in result["error"], result["error"]
    assert "never moves" in result["error"]
    assert registry_digest(team_registry, base["tag"]) == digests[base["tag"]]
