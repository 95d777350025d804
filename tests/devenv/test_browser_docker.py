"""The dev environment in a real browser: `imagesmith dev up` on a generated project, then Debian's headless
Chromium opens JupyterLab with the printed URL and keeps a screenshot (build/devenv/jupyterlab.png)."""

from __future__ import annotations

import shutil
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.devenv import local_kit

pytestmark = [pytest.mark.docker, pytest.mark.slow]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, docker_client: Any, os_base: str) -> Iterator[Path]:
    path = local_kit.project(tmp_path_factory.mktemp("devenv-browser"), os_base)
    yield path
    local_kit.purge(path)


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])  # the IHDR chunk comes first
    return int(width), int(height)


def test_jupyterlab_opens_in_headless_chromium(project: Path, tmp_path: Path, repo: Path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        local_kit.need_engine_or_fail(
            "Debian's chromium is not installed (tools/setup-system.sh installs it)"
        )
    assert chromium is not None
    lab, _ = local_kit.up(project)

    # The page the browser gets is JupyterLab's (its HTML names it and carries the lab config).
    status, html = local_kit.http(lab, "/lab")
    assert status == 200
    page = html.decode("utf-8", "replace")
    assert "<title>JupyterLab</title>" in page and "jupyter-config-data" in page, page[:500]

    shot = tmp_path / "jupyterlab.png"
    result = subprocess.run(
        [
            chromium,
            "--headless=new",
            "--no-sandbox",  # the suite runs as root
            "--disable-gpu",
            "--no-proxy-server",
            "--hide-scrollbars",
            f"--screenshot={shot}",
            "--window-size=1280,800",
            "--virtual-time-budget=20000",  # let Lab's JavaScript build the UI before the shot
            lab.url,
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0 and shot.is_file(), result.stderr[-2000:]
    data = shot.read_bytes()
    assert png_size(data) == (1280, 800)
    # A blank or error page compresses to a few KB; Lab's launcher with its icons is tens of KB.
    assert len(data) > 30_000, len(data)
    kept = local_kit.keep(shot, repo, "jupyterlab.png")
    print(f"screenshot: {kept}")
