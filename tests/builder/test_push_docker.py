"""``--push`` against a real registry: Debian's docker-registry on 127.0.0.1 (no network needed)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import docker_harness

pytestmark = [pytest.mark.docker, pytest.mark.slow]

FIXTURE = Path(__file__).parent / "fixtures" / "small"
BASE = "base-py3.11-bookworm"


@pytest.fixture
def registry(tmp_path: Path, docker_engine: docker_harness.Engine) -> Iterator[docker_harness.Registry]:
    try:
        registry = docker_harness.Registry(tmp_path)
    except docker_harness.NoEngine as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set, but no local registry can be started: {exc}")
        pytest.skip(f"no local registry can be started here: {exc}")
    try:
        yield registry
    finally:
        registry.stop()


def test_push_sends_tag_and_aliases_and_records_the_digest(
    tmp_path: Path, docker_client: Any, os_base: str, registry: docker_harness.Registry
) -> None:
    root = tmp_path / "p"
    shutil.copytree(FIXTURE, root)
    plan = json.loads((root / "plan.json").read_text())
    base = plan["images"][0]
    repository = f"{registry.address}/imagesmith-test/base"
    base.update(tag=f"{repository}:py3.11-bookworm", aliases=[f"{repository}:latest"])
    (root / "plan.json").write_text(json.dumps(plan))
    try:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "imagesmith",
                "build",
                BASE,
                "--push",
                "--plan",
                "plan.json",
                "--base-image",
                f"bookworm={os_base}",
                "--ca-cert",
                "/etc/ssl/certs/ca-certificates.crt",
            ],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=1200,
            check=False,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        image = json.loads((root / "imagesmith-build" / "manifest.json").read_text())["images"][0]
        assert image["pushed"] == [f"{repository}:py3.11-bookworm", f"{repository}:latest"]
        answer = registry.get("/v2/imagesmith-test/base/tags/list")
        assert answer is not None
        assert sorted(json.loads(answer[0])["tags"]) == ["latest", "py3.11-bookworm"]
        manifest = registry.get(
            "/v2/imagesmith-test/base/manifests/py3.11-bookworm",
            accept="application/vnd.docker.distribution.manifest.v2+json",
        )
        assert manifest is not None
        digest = manifest[1]["Docker-Content-Digest"]
        assert image["repo_digests"] == [f"{repository}@{digest}"]
        # What the registry holds is the image that was built and tested here.
        config_digest = json.loads(manifest[0])["config"]["digest"]
        assert config_digest == image["image_id"]
    finally:
        for ref in (base["tag"], *base["aliases"]):
            with contextlib.suppress(Exception):
                docker_client.api.remove_image(ref, noprune=True)
