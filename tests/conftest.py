"""Shared fixtures. Area fixtures live in tests/<area>/conftest.py."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import docker_harness

REPO = Path(__file__).resolve().parents[1]


EXAMPLE = REPO / "examples" / "team"


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def example() -> Path:
    """The example team repository's own files (its policy, locks and rendered images): ``init --adopt``'s."""
    return EXAMPLE


@pytest.fixture
def run_cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run the installed console script exactly as a user would."""

    def run(
        *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        exe = Path(sys.executable).with_name("imagesmith")
        full_env = {**os.environ, **(env or {})}
        return subprocess.run(
            [str(exe), *args], capture_output=True, text=True, cwd=cwd, env=full_env, timeout=120
        )

    return run


# ---- a real Docker engine, shared by every test marked `docker` ------------------------------------
@pytest.fixture(scope="session")
def docker_engine() -> Iterator[docker_harness.Engine]:
    try:
        engine = docker_harness.engine()
    except docker_harness.NoEngine as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set, so the Docker tests must run, but no engine can be had: {exc}")
        pytest.skip(f"no Docker engine can be started here: {exc}")
    try:
        yield engine
    finally:
        engine.stop()


@pytest.fixture(scope="session")
def os_base(docker_engine: docker_harness.Engine) -> str:
    try:
        return docker_harness.os_base(docker_engine.client)
    except docker_harness.NoEngine as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set, but the OS base image cannot be created: {exc}")
        pytest.skip(f"the OS base image cannot be created here: {exc}")


@pytest.fixture(scope="session")
def docker_client(docker_engine: docker_harness.Engine) -> Any:
    return docker_engine.client


@pytest.fixture(scope="session")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """imagesmith wheels built with `python -m build` from this checkout: its own version, and the next
    release (the same code with a bumped version and small template changes), in one wheelhouse."""
    from tests.team import kit

    return kit.build_wheels(tmp_path_factory.mktemp("wheels"))
