"""Doctor speed: ``doctor why`` on the torch 2.13 CPU ``_C`` tree vs ldd/lddtree/libtree and interpreter
start, the full doctor vs ``python -m torch.utils.collect_env``, and the full doctor on a simulated GPU node
(stub driver libraries, NVIDIA's real libcudart, so the probe subprocess runs and the matrix is consulted)
vs interpreter start. Wall time of whole commands, median of several runs.

Targets (issue 11): ``why`` <= 1.5x interpreter start; the full doctor with a driver <= 2.5x.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import VENV_BIN, row, wall, wall_pair  # noqa: E402

WORK = HERE / ".work"
VENV = WORK / "venv"
TORCH = "torch==2.13.0"
RUNS = 9


def _venv() -> Path:
    py = VENV / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    if not sorted(VENV.glob("lib/python3*/site-packages/torch/_C*.so")):
        subprocess.run([str(py), "-m", "pip", "install", "-q", TORCH], check=True)
    return py


def run() -> list[dict[str, object]]:
    py = _venv()
    # Installed packages carry .pyc files; make sure ours do even under PYTHONDONTWRITEBYTECODE=1.
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(HERE.parent / "imagesmith")], check=True)
    target = str(sorted(VENV.glob("lib/python3*/site-packages/torch/_C*.so"))[0])
    # The console script, as a user in a pod types it (python -m adds runpy's ~5 ms of imports).
    doctor = [str(VENV_BIN / "imagesmith"), "doctor"]
    why_s = wall([*doctor, "why", target, "--json"], runs=15)
    results: list[dict[str, object]] = []
    for name, cmd in (
        ("ldd", ["ldd", target]),
        ("lddtree (pax-utils)", ["lddtree", target]),
        ("libtree", ["libtree", "-p", target]),
    ):
        if shutil.which(cmd[0]) is None:
            continue
        base = wall(cmd, runs=RUNS)
        results.append(
            {
                "name": "doctor why: torch 2.13 CPU _C tree",
                "imagesmith_s": why_s,
                "baseline": name,
                "baseline_s": base,
                "ratio": why_s / base,
                "note": "target < 40 ms; ratio = imagesmith/baseline (lower is better)",
            }
        )
    # The interpreter's own start is the floor under any Python tool; on this shared VM it moves by ~1.5x
    # between runs, so the ratio to it is measured with the two commands alternating (same load for both).
    interpreter = [str(VENV_BIN / "python"), "-c", "pass"]
    why_paired, floor = wall_pair([*doctor, "why", target, "--json"], interpreter)
    results.append(
        row(
            "doctor why: torch 2.13 CPU _C tree",
            why_paired,
            "python -c pass (interpreter start, same venv)",
            floor,
            f"target <= 1.5x; run alternately with the interpreter, 21 pairs; {(why_paired - floor) * 1000:.1f} ms above it",
        )
    )
    # The full doctor inside the torch venv (it models torch's preloads and the _C tree), vs collect_env.
    env = {"PYTHONPATH": str(HERE.parent)}  # wall() adds it to the current environment
    full_s = wall([str(py), "-m", "imagesmith", "doctor", "--json"], env=env, runs=RUNS)
    collect_s = wall([str(py), "-m", "torch.utils.collect_env"], runs=3)
    results.append(
        {
            "name": "full doctor (torch 2.13 CPU venv, no GPU)",
            "imagesmith_s": full_s,
            "baseline": "python -m torch.utils.collect_env",
            "baseline_s": collect_s,
            "ratio": full_s / collect_s,
            "note": "target < 150 ms; no driver here, so no probe subprocess runs",
        }
    )
    results.append(_gpu_node_row(interpreter))
    return results


def _gpu_node_row(interpreter: list[str]) -> dict[str, object]:
    """The full doctor where a driver answers: tests/doctor's simulated node (gcc-built libcuda and NVML
    stubs mounted like the NVIDIA runtime mounts the real ones, the real libcudart 12.4 wheel)."""
    sys.path.insert(0, str(HERE.parent))
    from tests.doctor.conftest import Node, download_cudart_wheels

    root = WORK / "gpu-node"
    if root.exists():
        shutil.rmtree(root)
    node = Node(root, download_cudart_wheels())
    node.gpu_node("550.90.07", cuda=12040)
    node.cudart(12)
    cmd = [str(VENV_BIN / "imagesmith"), "doctor", "--root", str(root), "--json"]
    full_s, floor = wall_pair(cmd, interpreter, env=node.env)
    return row(
        "full doctor, simulated GPU node (probe runs, matrix loaded)",
        full_s,
        "python -c pass (interpreter start, same venv)",
        floor,
        "target <= 2.5x; run alternately with the interpreter, 21 pairs; the probe is a forked child loading "
        "libcuda and NVML",
    )


if __name__ == "__main__":
    for r in run():
        print(
            f"{r['name']:<42} imagesmith {float(r['imagesmith_s']) * 1000:7.1f} ms   "  # type: ignore[arg-type]
            f"{r['baseline']:<34} {float(r['baseline_s']) * 1000:8.1f} ms   ratio {float(r['ratio']):.2f}"  # type: ignore[arg-type]
        )
