"""The harvest, side by side with the real alternatives.

Rows:
* reading a framework release's CUDA pins: ``matrix harvest torch==X`` with a cold cache (the PEP 658
  metadata file alone) vs ``pip download --no-deps`` of the wheel (what you would do to read its METADATA);
* the staleness check's index reads (6 projects) vs ``pip index versions`` for the same projects;
* ``--deep`` on the torch wheel (its three CUDA libraries' fatbin census, wheel already downloaded) vs
  NVIDIA's cuobjdump ``--list-elf`` + ``--list-ptx`` on libtorch_cuda.so alone (unzip included on both
  sides).

Run: ``.venv/bin/python bench/run.py harvest`` (downloads ~1 GB once: the torch wheel and cuobjdump).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.common import row  # noqa: E402
from imagesmith.harvest import deep  # noqa: E402
from imagesmith.harvest import run as harvest_run  # noqa: E402
from imagesmith.harvest.pypi import Index  # noqa: E402

CA = Path("/etc/ssl/certs/ca-certificates.crt")
EXE = str(Path(sys.executable).with_name("imagesmith"))
TORCH = "2.14.0"
WORK = REPO / "bench" / ".work" / "harvest"


def _timed(cmd: list[str], env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if done.returncode not in (0, 1):
        raise RuntimeError(f"{' '.join(cmd[:5])}: {done.stdout[-800:]}{done.stderr[-800:]}")
    return time.perf_counter() - started


def _metadata_row() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-harvest-") as tmp:
        env = {**os.environ, "XDG_CACHE_HOME": str(Path(tmp) / "cache")}
        ours = _timed([EXE, "matrix", "harvest", "--ca-cert", str(CA), f"torch=={TORCH}"], env)
        pip_env = {**os.environ, "PIP_CONFIG_FILE": "/dev/null", "PIP_CACHE_DIR": str(Path(tmp) / "pip")}
        theirs = _timed(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
             "--python-version", "3.14", "--platform", "manylinux_2_28_x86_64", "-d", str(Path(tmp) / "dl"),
             f"torch=={TORCH}"],
            pip_env,
        )  # fmt: skip
    return row(f"CUDA pins of torch {TORCH} (cold)", ours, "pip download --no-deps (the wheel)", theirs,
               "the PEP 658 METADATA alone (~40 kB) vs the ~1 GB wheel")  # fmt: skip


def _index_row() -> dict[str, Any]:
    index = Index(ca_cert=CA, cache=WORK / "cache")
    started = time.perf_counter()
    for project in harvest_run.WATCHED:
        index.versions(project)
    ours = time.perf_counter() - started
    env = {**os.environ, "PIP_CONFIG_FILE": "/dev/null"}
    theirs = 0.0
    for project in harvest_run.WATCHED:
        theirs += _timed([sys.executable, "-m", "pip", "index", "versions", project], env)
    return row(f"release lists of {len(harvest_run.WATCHED)} projects", ours, "pip index versions, each", theirs,
               "the --check staleness alarm's index reads (PEP 691 JSON)")  # fmt: skip


def _deep_row() -> dict[str, Any]:
    index = Index(ca_cert=CA)
    wheel = index.wheel(harvest_run.linux_wheel(index, "torch", TORCH))
    started = time.perf_counter()
    libraries = deep.scan_wheel(wheel)
    ours = time.perf_counter() - started
    tool = index.wheel(
        next(a for a in index.artifacts("nvidia-cuda-cuobjdump", "13.2.86") if "x86_64" in a.filename)
    )
    tools = WORK / "cuobjdump"
    with zipfile.ZipFile(tool) as archive:
        member = next(n for n in archive.namelist() if n.endswith("/bin/cuobjdump"))
        archive.extract(member, tools)
    cuobjdump = tools / member
    cuobjdump.chmod(0o755)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-cuobjdump-") as tmp, zipfile.ZipFile(wheel) as archive:
        archive.extract("torch/lib/libtorch_cuda.so", tmp)
        lib = str(Path(tmp) / "torch/lib/libtorch_cuda.so")
        for flag in ("--list-elf", "--list-ptx"):
            subprocess.run([str(cuobjdump), flag, lib], capture_output=True, check=False)
    theirs = time.perf_counter() - started
    shutil.rmtree(tools, ignore_errors=True)
    main = deep.primary(libraries)
    return row(f"SASS/PTX of the torch {TORCH} wheel", ours, "cuobjdump --list-elf/--list-ptx (libtorch_cuda.so only)",
               theirs, f"{len(libraries)} libraries censused; decides: {main}")  # fmt: skip


def run() -> list[dict[str, Any]]:
    WORK.mkdir(parents=True, exist_ok=True)
    return [_metadata_row(), _index_row(), _deep_row()]
