"""`imagesmith --version`, `matrix check` and `images plan` wall time against `python -c pass`, and one verdict
in process (the fleet scan and the admission webhook ask thousands) against one `packaging` specifier check.

The package is byte-compiled first, as `pip install` leaves it: this machine sets PYTHONDONTWRITEBYTECODE,
so without it every run would time the compiler. The matrix parse cache is warmed by the warmup runs."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import VENV_BIN, inproc, row, wall


def run() -> list[dict[str, object]]:
    import subprocess

    subprocess.run(
        [
            sys.executable,
            "-m",
            "compileall",
            "-q",
            str(Path(__file__).resolve().parent.parent / "imagesmith"),
        ],
        check=True,
    )
    python = sys.executable
    exe = str(VENV_BIN / "imagesmith")
    baseline = wall([python, "-c", "pass"])
    version = wall([exe, "--version"])
    check = wall(
        [
            exe,
            "matrix",
            "check",
            "--framework",
            "torch==2.4.1+cu124",
            "--driver",
            "535.104.05",
            "--gpu",
            "H100",
        ]
    )
    check_json = wall(
        [
            exe,
            "matrix",
            "check",
            "--framework",
            "jax==0.7.2+cuda13",
            "--driver",
            "580.82.07",
            "--gpu",
            "B200",
            "--json",
        ]
    )
    plan = wall([exe, "images", "plan"], runs=5)
    return [
        row("imagesmith --version", version, "python -c pass", baseline),
        row("matrix check (torch, text)", check, "python -c pass", baseline),
        row("matrix check (jax, --json)", check_json, "python -c pass", baseline),
        row("images plan (default policy)", plan, "python -c pass", baseline, "loads every data file"),
        _verdict_row(),
    ]


def _verdict_row() -> dict[str, object]:
    """One verdict once the knowledge is loaded, next to one PEP 440 specifier check (the cheapest
    question `pip` asks per candidate)."""
    from packaging.specifiers import SpecifierSet

    from imagesmith.matrix import knowledge, rules, spec
    from imagesmith.matrix.versions import NvVersion

    kb = knowledge.load()
    build = spec.resolve(kb, "torch==2.4.1+cu124")
    gpu = kb.find_gpu("H100")
    driver = NvVersion.parse("535.104.05")

    def verdict() -> object:
        return rules.evaluate(
            kb, cuda=build.cuda, sass=build.sass, ptx=build.ptx, driver=driver, gpu=gpu, compat_cuda=None
        )

    verdict()
    specifier = SpecifierSet(">=3.10,<3.14")
    ours = inproc(verdict, runs=2000)
    theirs = inproc(lambda: specifier.contains("3.12"), runs=2000)
    return {
        **row("one verdict, in process", ours, "SpecifierSet.contains", theirs, "target <= 50 µs"),
        "unit": "us",
    }
