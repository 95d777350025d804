"""Locks, measured side by side with the real alternatives.

Rows:
* locking the embedded default's PyPI-reachable images (base, torch cu130, JAX, TensorFlow: runtime and
  devel, each child within its parent's pins) with ``imagesmith images lock --upgrade`` vs pip-tools'
  ``pip-compile --generate-hashes`` resolving the same requirement sets with the same constraints, one
  after the other as imagesmith does; cold (empty caches) and warm;
* building the small CUDA-runtime image (``--no-cache``) from its lock (hash-checked, ``--no-deps``) vs the
  same policy rendered unlocked (pip resolving at build time), time and size.

Run: ``.venv/bin/python bench/run.py locks`` (root for the Docker rows; a few minutes).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.common import row  # noqa: E402
from imagesmith.contract import pins  # noqa: E402
from imagesmith.images import lock  # noqa: E402
from imagesmith.images.plan import make_plan  # noqa: E402
from imagesmith.images.policy import load_policy  # noqa: E402
from imagesmith.matrix import knowledge  # noqa: E402

WORK = REPO / "bench" / ".work" / "locks"
CA = Path("/etc/ssl/certs/ca-certificates.crt")
EXE = str(Path(sys.executable).with_name("imagesmith"))
SMALL_POLICY = """schema: 1
registry: localhost/imagesmith-bench
bases:
  bookworm: {{image: {os_base}, python: "3.11", description: Debian 12}}
pythons: ["3.11"]
variants: [runtime]
frameworks:
  cuda: ["12.9"]
fleet:
  - {{name: l4, driver: "575.57.08", gpu: L4}}
"""


def _reachable() -> list[str]:
    """The default plan's images whose index PyPI is (the PyTorch index is not reachable here)."""
    kb = knowledge.load()
    plan = make_plan(kb, load_policy(REPO / "examples" / "team" / "imagesmith.yaml", kb))
    names: list[str] = []
    for image in plan.images:
        if image.index_url is None and (image.parent is None or image.parent in names):
            names.append(image.name)
    return names


def _timed(cmd: list[str], env: dict[str, str], cwd: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])}: {done.stdout[-1500:]}{done.stderr[-1500:]}")
    return time.perf_counter() - started


def _piptools(venv_dir: Path) -> Path:
    python = venv_dir / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv_dir)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "pip-tools"], check=True)
    return venv_dir / "bin" / "pip-compile"


def _pip_compile_all(pip_compile: Path, names: list[str], env: dict[str, str], work: Path) -> float:
    """pip-compile each image's requirements within its ancestors' pins (read from imagesmith's locks, so
    both resolve the same problem), one after the other."""
    kb = knowledge.load()
    plan = make_plan(kb, load_policy(REPO / "examples" / "team" / "imagesmith.yaml", kb))
    locks = lock.read_locks(REPO, plan)
    total = 0.0
    for name in names:
        request = lock.request_for(plan.image(name))
        wanted, _ = lock.parent_wins(request.requirements, lock.ancestors_pins(plan, name, locks))
        (work / f"{name}.in").write_text("".join(f"{r}\n" for r in wanted))
        constraints = lock.ancestors_pins(plan, name, locks)
        (work / f"{name}.c.txt").write_text("".join(f"{p.name}=={p.version}\n" for p in constraints))
        cmd = [str(pip_compile), "--quiet", "--generate-hashes", "--no-header", "--strip-extras"]
        cmd += ["-c", str(work / f"{name}.c.txt"), "-o", str(work / f"{name}.txt"), str(work / f"{name}.in")]
        total += _timed(cmd, env, work)
    return total


def _lock_rows() -> list[dict[str, Any]]:
    names = _reachable()
    rows = []
    piptools = _piptools(WORK / "piptools-venv")
    for state in ("cold", "warm"):
        with tempfile.TemporaryDirectory(prefix="bench-locks-") as tmp:
            work = Path(tmp)
            shutil.copy(REPO / "examples" / "team" / "imagesmith.yaml", work / "imagesmith.yaml")
            env = {**os.environ, "SSL_CERT_FILE": str(CA), "PIP_CERT": str(CA)}
            caches = WORK / "caches"
            if state == "cold":
                shutil.rmtree(caches, ignore_errors=True)
            env["UV_CACHE_DIR"] = str(caches / "uv")
            env["PIP_CACHE_DIR"] = str(caches / "pip")
            env["XDG_CACHE_HOME"] = str(caches / "xdg")  # pip-tools keeps its own cache there
            env["PIP_CONFIG_FILE"] = "/dev/null"  # PyPI only, as the lock (no local wheel mirrors)
            ours = _timed([EXE, "images", "lock", "--upgrade", "--ca-cert", str(CA), *names], env, work)
            theirs = _pip_compile_all(piptools, names, env, work)
            count = sum(
                len(pins.parse_lock(p.read_text(), str(p)).pins)
                for p in work.glob("base_images/*/requirements.lock")
            )
        rows.append(
            row(
                f"lock the default's {len(names)} PyPI images ({state} caches)",
                ours,
                "pip-compile --generate-hashes, same sets",
                theirs,
                f"{count} pinned packages with hashes; children within their parents' pins",
            )
        )
    return rows


def _build(root: Path, out: str, os_base: str) -> tuple[float, dict[str, Any]]:
    import json

    env = {**os.environ}
    seconds = _timed(
        [EXE, "build", "--no-cache", "--no-sizes", "--ca-cert", str(CA), "--base-image", f"bookworm={os_base}",
         "--output-dir", out, "cuda-12.9-py3.11-bookworm-runtime"],
        env,
        root,
    )  # fmt: skip
    manifest = json.loads((root / out / "manifest.json").read_text())
    return seconds, {i["name"]: i for i in manifest["images"]}


def _build_rows() -> list[dict[str, Any]]:
    from tests import docker_harness

    engine = docker_harness.engine()
    os_base = docker_harness.os_base(engine.client)
    locked, unlocked = WORK / "locked", WORK / "unlocked"
    for root in (locked, unlocked):
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        (root / "imagesmith.yaml").write_text(SMALL_POLICY.format(os_base=os_base))
    _timed([EXE, "images", "lock", "--ca-cert", str(CA)], dict(os.environ), locked)
    _timed([EXE, "images", "render"], dict(os.environ), locked)
    _timed([EXE, "images", "render", "--allow-unlocked"], dict(os.environ), unlocked)
    # Parents first (both trees share the base's image name; build each tree's own base once, untimed).
    for root in (locked, unlocked):
        _timed([EXE, "build", "--no-sizes", "--ca-cert", str(CA), "--base-image", f"bookworm={os_base}",
                "--output-dir", "warm", "base-py3.11-bookworm"], dict(os.environ), root)  # fmt: skip
    ours_s, ours = _build(locked, "cold", os_base)
    theirs_s, theirs = _build(unlocked, "cold", os_base)
    name = "cuda-12.9-py3.11-bookworm-runtime"
    mb = 1e6
    return [
        row(
            f"{name} --no-cache, from its lock",
            ours_s,
            "same policy unlocked (pip resolves)",
            theirs_s,
            "build + smoke tests + SBOM step; both install the same wheels",
        ),
        {
            "name": f"{name} size, locked vs unlocked",
            "imagesmith_s": ours[name]["size"] / mb,
            "baseline": "unlocked",
            "baseline_s": theirs[name]["size"] / mb,
            "ratio": ours[name]["size"] / theirs[name]["size"],
            "unit": "MB",
            "note": "the lock file and the SBOM are the difference",
        },
    ]


def run() -> list[dict[str, Any]]:
    WORK.mkdir(parents=True, exist_ok=True)
    return [*_lock_rows(), *_build_rows()]
