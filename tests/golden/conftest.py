"""Fixtures for the joint tests: a real local registry (Debian's docker-registry) for the session."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import docker_harness

CACHE_REPOSITORY = "imagesmith-test-cache"


@pytest.fixture(scope="session")
def team_registry(
    tmp_path_factory: pytest.TempPathFactory, docker_engine: docker_harness.Engine
) -> Iterator[docker_harness.Registry]:
    try:
        root = tmp_path_factory.mktemp("team-registry")
        registry = docker_harness.Registry(root)
    except docker_harness.NoEngine as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set, but the local registry cannot start: {exc}")
        pytest.skip(f"no local registry here: {exc}")
    try:
        yield registry
    finally:
        registry.stop()
        forget_registry(docker_engine.client, registry, root)


def forget_registry(client: Any, registry: docker_harness.Registry, root: Path) -> None:
    """Multi-GB framework images were pushed here: drop the registry's blobs, move the engine's tags of
    this throwaway registry (a new port every session) to one stable cache name, and prune the curated
    images that no tag holds any more, so repeated runs neither fill the disk (pytest keeps the last
    three temporary roots) nor lose the layer cache of the newest build."""
    from imagesmith.contract.tags import ImageRef

    shutil.rmtree(root / "data", ignore_errors=True)
    prefix = f"{registry.address}/"
    for image in client.images.list():
        for tag in image.tags:
            if tag.startswith(prefix):
                ref = ImageRef.parse(tag)
                with contextlib.suppress(Exception):
                    image.tag(f"{CACHE_REPOSITORY}/{ref.path}", ref.tag_or_latest)
                    client.images.remove(tag, noprune=True)
    with contextlib.suppress(Exception):
        client.images.prune(filters={"dangling": True, "label": "io.imagesmith.variant"})
