"""Helpers for the local dev environment's Docker tests: one generated project whose image builds here.

The cheapest project that exercises the whole path: a team policy with one small CUDA line, runtime and its
devel twin (cuda 12.9 wheels on the debootstrapped bookworm base, plus the toolchain; cached after), built locally with
`imagesmith build` (no registry: a library project follows the tag, it pins no digest), and a `library`
project copied from that team repository at tag v1 with real copier and git. The slug is fixed so the
engine's layer cache serves the next session too.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.golden import kit
from tests.templates.templates_kit import commit_all, git

SLUG = "devenv-demo"
PACKAGE = "devenv_demo"
REGISTRY = "localhost/imagesmith-devenv-test"
CONTAINER = f"imagesmith-dev-{SLUG}"
VOLUME = f"imagesmith-dev-{SLUG}-home"
URL = re.compile(r"^http://127\.0\.0\.1:(\d+)/lab\?token=([0-9a-f]+)$", re.MULTILINE)

_made: dict[str, Path] = {}


@dataclass(frozen=True)
class Lab:
    url: str
    port: int
    token: str


def need_engine_or_fail(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"CI is set, so this test must run: {reason}")
    pytest.skip(reason)


def project(root: Path, os_base: str) -> Path:
    """The generated library project (made once per session), FROM the team's cuda 12.9 runtime image."""
    if "project" in _made:
        return _made["project"]
    repo = kit.team_repository(root / "team", kit.team_policy(REGISTRY, os_base, variants="[runtime, devel]"))
    git(repo, "tag", "v1")
    built = kit.imagesmith(
        "build", "--ca-cert", str(kit.HOST_CA), "--output-dir", str(root / "out"), cwd=repo
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-2000:]
    runtime = next(i for i in kit.plan(repo)["images"] if i["variant"] == "runtime")
    _made["team"] = repo
    dst = root / SLUG
    copied = kit.copy_project(
        repo,
        dst,
        project_type="library",
        project_name="Devenv Demo",
        framework="none",
        base_image=runtime["tag"],
    )
    assert copied.returncode == 0, copied.stdout + copied.stderr
    git(dst, "init", "-q", "-b", "main")
    commit_all(dst, "start")
    _made["project"] = dst
    return dst


def team(root: Path, os_base: str) -> Path:
    """The team's template repository the project came from, its curated images built on this engine."""
    project(root, os_base)
    return _made["team"]


def dev(*args: str, cwd: Path, timeout: int = 900) -> subprocess.CompletedProcess[str]:
    return kit.imagesmith("dev", *args, cwd=cwd, timeout=timeout)


def up(project_dir: Path) -> tuple[Lab, subprocess.CompletedProcess[str]]:
    """`imagesmith dev up` as a user types it (with this machine's proxy CA for the build)."""
    result = dev("up", "--ca-cert", str(kit.HOST_CA), cwd=project_dir)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    match = URL.search(result.stdout)
    assert match, result.stdout
    return Lab(match.group(0), int(match.group(1)), match.group(2)), result


def purge(project_dir: Path) -> None:
    dev("down", "--purge", cwd=project_dir)


def http(lab: Lab, path: str, *, method: str = "GET", body: bytes | None = None) -> tuple[int, bytes]:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        f"http://127.0.0.1:{lab.port}{path}",
        data=body,
        method=method,
        headers={"Authorization": f"token {lab.token}", "Content-Type": "application/json"},
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=30) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), bytes(exc.read())


def run_cell(client: Any, lab: Lab, kernel_name: str, code: str) -> tuple[int, str]:
    """POST /api/kernels on the server, then one execute_request over the kernel's websocket channel,
    sent from inside the container (its tornado), where the server listens on 127.0.0.1 too."""
    import json

    status, body = http(lab, "/api/kernels", method="POST", body=json.dumps({"name": kernel_name}).encode())
    assert status == 201, (status, body[:500])
    kernel_id = json.loads(body)["id"]
    container = client.containers.get(CONTAINER)
    inner_port = lab.port if container.labels.get("io.imagesmith.dev.network") == "host" else 8888
    script = (Path(__file__).parent / "kernel_client.py").read_text(encoding="utf-8")
    result = container.exec_run(["python", "-c", script, str(inner_port), lab.token, kernel_id, code])
    http(lab, f"/api/kernels/{kernel_id}", method="DELETE")
    return int(result.exit_code), result.output.decode("utf-8", "replace")


def keep(path: Path, repo: Path, name: str) -> Path:
    """Copy an artefact to build/devenv/ (gitignored) so it outlives pytest's temporary directories."""
    out = repo / "build" / "devenv"
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy2(path, out / name)
    return out / name
