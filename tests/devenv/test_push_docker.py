"""The joint between the local dev image and the remote targets, on the real engine and a real registry: a batch
project from the team's repository pushes its dev image (`imagesmith dev push`) to where deploy/dev/ pulls it, and
`dev up --target k8s --built` gates the pushed image itself, its labels read from the registry without pulling."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from imagesmith.registry.facts import image_facts
from tests import docker_harness
from tests.devenv import local_kit
from tests.golden import kit
from tests.templates.templates_kit import answers, commit_all, git

pytestmark = [pytest.mark.docker, pytest.mark.slow]

SLUG = "devenv-push-demo"


@pytest.fixture(scope="module")
def registry(
    tmp_path_factory: pytest.TempPathFactory, docker_engine: Any
) -> Iterator[docker_harness.Registry]:
    try:
        started = docker_harness.Registry(tmp_path_factory.mktemp("dev-registry"))
    except docker_harness.NoEngine as exc:
        local_kit.need_engine_or_fail(f"no local registry here: {exc}")
        raise
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="module")
def project(
    tmp_path_factory: pytest.TempPathFactory, os_base: str, registry: docker_harness.Registry
) -> Path:
    """A GPU batch project on the team's CUDA 12.9 runtime image, its images going to the local registry."""
    root = tmp_path_factory.mktemp("devenv-push")
    team = local_kit.team(root, os_base)
    runtime = next(i for i in kit.plan(team)["images"] if i["variant"] == "runtime")
    dst = root / SLUG
    copied = kit.copy_project(
        team,
        dst,
        project_type="batch",
        project_name="Devenv Push Demo",
        framework="none",
        base_image=runtime["tag"],
        image_registry=f"{registry.address}/dev",
        gpus="1",
    )
    assert copied.returncode == 0, copied.stdout + copied.stderr
    git(dst, "init", "-q", "-b", "main")
    commit_all(dst, "start")
    return dst


def imagesmith(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # No cluster: kubectl (installed here) finds no kubeconfig, so the answer is the command to run.
    env = {**os.environ, "KUBECONFIG": str(cwd / "no-kubeconfig")}
    return subprocess.run(
        [str(kit.VENV_BIN / "imagesmith"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )


def test_dev_push_then_the_gate_judges_the_pushed_image(
    project: Path, registry: docker_harness.Registry, docker_client: Any
) -> None:
    ref = f"{registry.address}/dev/{SLUG}-dev:0.1.0"
    # The one spelling: the workspace StatefulSet pulls what `dev push` pushes.
    (statefulset,) = [
        d
        for d in yaml.safe_load_all((project / "deploy/dev/k8s/statefulset.yaml").read_text(encoding="utf-8"))
        if d
    ]
    assert statefulset["spec"]["template"]["spec"]["containers"][0]["image"] == ref

    pushed = imagesmith("dev", "push", "--ca-cert", str(kit.HOST_CA), cwd=project)
    assert pushed.returncode == 0, pushed.stdout[-3000:] + pushed.stderr[-3000:]
    first = pushed.stdout.splitlines()[0]
    assert first.startswith(f"pushed {ref}@sha256:"), pushed.stdout
    digest = first.rsplit("@", 1)[1]
    assert f"PUT /v2/dev/{SLUG}-dev/manifests/0.1.0" in registry.log.read_text(errors="replace")

    # Read back from the registry alone (no engine): the dev image's own labels, those of the devel twin it is
    # built on, the same promise as the image the project ships on.
    facts = image_facts(ref, engine=False)
    promised = facts.promised
    assert promised.variant == "devel", promised
    shipped = docker_client.images.get(answers(project)["base_image"]).labels
    assert (
        promised.cuda == shipped["io.imagesmith.cuda"]
        and promised.min_driver == shipped["io.imagesmith.min-driver"]
    )

    # The gate before paying judges the pushed image (--built) on the picked instance; with --apply and no
    # cluster configured (kubectl finds no kubeconfig), it says what to run instead.
    gated = imagesmith("dev", "up", "--target", "k8s", "--built", "--apply", cwd=project)
    assert gated.returncode == 0, gated.stdout + gated.stderr
    instance = statefulset["spec"]["template"]["spec"]["nodeSelector"]["node.kubernetes.io/instance-type"]
    assert gated.stdout.startswith(f"gate: pass: {ref} on aws {instance}"), gated.stdout
    assert "kubectl has no current context; run from" in gated.stdout
    assert "kubectl apply -f deploy/dev/k8s/" in gated.stdout

    # A second push of the same build moves nothing: the same digest.
    again = imagesmith("dev", "push", "--ca-cert", str(kit.HOST_CA), cwd=project)
    assert again.returncode == 0 and again.stdout.splitlines()[0] == f"pushed {ref}@{digest}", again.stdout


def test_dev_push_to_a_registry_that_refuses_says_where_to_fix_it(project: Path, tmp_path: Path) -> None:
    """A registry nobody listens on: one line naming the answer to change, the environment exit code."""
    clone = tmp_path / SLUG
    subprocess.run(["git", "clone", "-q", str(project), str(clone)], check=True)
    text = (clone / ".copier-answers.yml").read_text(encoding="utf-8")
    registry_answer = answers(project)["image_registry"]
    (clone / ".copier-answers.yml").write_text(
        text.replace(registry_answer, "127.0.0.1:9/dev"), encoding="utf-8"
    )
    refused = imagesmith("dev", "push", "--ca-cert", str(kit.HOST_CA), cwd=clone)
    assert refused.returncode == 3, refused.stdout + refused.stderr
    line = refused.stderr.strip().splitlines()[-1]
    assert "push of 127.0.0.1:9/dev/" in line and ".copier-answers.yml: image_registry" in line, (
        refused.stderr
    )
    assert "Traceback" not in refused.stderr
