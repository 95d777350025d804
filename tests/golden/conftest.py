"""Fixtures for the joint tests: a real local registry (Debian's docker-registry) for the session."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests import docker_harness


@pytest.fixture(scope="session")
def team_registry(
    tmp_path_factory: pytest.TempPathFactory, docker_engine: docker_harness.Engine
) -> Iterator[docker_harness.Registry]:
    try:
        registry = docker_harness.Registry(tmp_path_factory.mktemp("team-registry"))
    except docker_harness.NoEngine as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set, but the local registry cannot start: {exc}")
        pytest.skip(f"no local registry here: {exc}")
    try:
        yield registry
    finally:
        registry.stop()
