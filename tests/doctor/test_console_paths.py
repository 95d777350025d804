"""The doctor as a process: the console path (``python -m imagesmith doctor ...``, dispatched before click and
ended with ``os._exit`` after a flush) prints what the click group prints, byte for byte, with the same exit
code; and neither `why` nor the full doctor imports what its speed budget (bench/bench_doctor.py) cannot pay.
No timings are asserted here: the bench measures them.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.doctor.conftest import build_lib

CLICK = "import sys; from imagesmith.cli import run; sys.exit(run(sys.argv[1:]))"
# Block-buffered stdout, as in a pod: what os._exit would lose without the flush before it.
BUFFERED = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}


def _run(argv: list[str], *, click: bool) -> tuple[int, str, str]:
    prefix = [sys.executable, "-c", CLICK] if click else [sys.executable, "-m", "imagesmith"]
    proc = subprocess.run(
        [*prefix, "doctor", *argv], capture_output=True, text=True, timeout=120, env=BUFFERED
    )
    return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A library with one dependency found through its RUNPATH, one not found, inside a --root tree."""
    root = tmp_path_factory.mktemp("tree")
    dep = build_lib(root / "opt/app/lib/libdep.so.1", "dep")
    build_lib(root / "opt/app/libtop.so", "top", needs=(("libdep.so.1", dep.parent),), runpath="$ORIGIN/lib")
    build_lib(root / "opt/app/libmissing.so", "missing", needs=(("libdep.so.1", dep.parent),))
    return root


ARGUMENT_SETS = {
    "why json": lambda t: ["why", str(t / "opt/app/libtop.so"), "--json"],
    "why text": lambda t: ["why", str(t / "opt/app/libtop.so")],
    "why not found": lambda t: ["why", "--json", str(t / "opt/app/libmissing.so")],
    "why under --root": lambda t: ["why", "/opt/app/libtop.so", "--root", str(t)],
    "why no such file": lambda t: ["why", str(t / "nope.so")],
    "why a directory": lambda t: ["why", str(t)],
    "full doctor json": lambda t: ["--root", str(t), "--no-probe", "--json"],
    "full doctor text, strict": lambda t: ["--strict", "--root", str(t), "--no-probe"],
    "manifest": lambda t: ["manifest", "--kind", "job", "--namespace", "ops"],
}


@pytest.mark.parametrize("name", list(ARGUMENT_SETS))
def test_console_path_prints_what_the_click_path_prints(tree: Path, name: str) -> None:
    argv = ARGUMENT_SETS[name](tree)
    fast = _run(argv, click=False)
    assert fast == _run(argv, click=True), name
    if fast[0] == 2:
        assert len(fast[2].strip().splitlines()) == 1 and "Traceback" not in fast[2]
    else:
        assert fast[1].endswith("\n") and fast[2] == ""  # flushed whole before os._exit


def test_console_path_keeps_the_exit_codes(tree: Path) -> None:
    assert _run(["why", str(tree / "opt/app/libtop.so")], click=False)[0] == 0
    assert _run(["why", str(tree / "opt/app/libmissing.so")], click=False)[0] == 1
    code, out, err = _run(["why", "--bogus", str(tree)], click=False)
    assert (code, out) == (2, "") and err.startswith("imagesmith doctor: error: ")


def test_main_with_arguments_returns_instead_of_exiting(tree: Path) -> None:
    """`main([...])` (tests, embedding) gets the code back; only the process entry ends the process."""
    from imagesmith.__main__ import main

    assert main(["doctor", "why", str(tree / "opt/app/libmissing.so"), "--json"]) == 1


def test_a_reader_that_leaves_early_gets_no_traceback(tree: Path) -> None:
    """`imagesmith doctor why ... | head -1`: the flush before os._exit meets a closed pipe and ends quietly."""
    lib = str(tree / "opt/app/libtop.so")
    reader, writer = os.pipe()
    os.close(reader)
    proc = subprocess.run([sys.executable, "-m", "imagesmith", "doctor", "why", lib, "--json"], stdout=writer,
                          stderr=subprocess.PIPE, text=True, timeout=120, env=BUFFERED)  # fmt: skip
    os.close(writer)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr


# What each path must not import: the slow standard modules its budget cannot pay for, and anything outside the
# standard library (the doctor runs in slim pods). The probe's ctypes is imported in the forked child only.
FORBIDDEN = (
    "click", "typing", "dataclasses", "re", "pathlib", "json", "csv", "enum", "argparse", "inspect", "subprocess",
    "shutil", "tomllib", "importlib.metadata", "importlib.resources", "ctypes", "signal", "threading", "glob",
    "fnmatch", "tempfile", "_ctypes", "yaml", "jinja2", "rich", "packaging", "docker", "elftools", "pynvml",
)  # fmt: skip


def _imported_after(
    argv: list[str], env: dict[str, str] | None = None, modules: tuple[str, ...] = FORBIDDEN
) -> tuple[int, list[str]]:
    code = (
        "import sys, io\n"
        "from imagesmith.__main__ import main\n"
        "sys.stdout = io.StringIO()\n"
        f"rc = main({argv!r})\n"
        "sys.stdout = sys.__stdout__\n"
        f"print(rc, sorted(m for m in {modules!r} if m in sys.modules))"
    )
    # -S: no site hooks (a .pth file may import re or typing on its own); -I would drop the checkout.
    proc = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {}), "PYTHONPATH": ":".join(sys.path)})  # fmt: skip
    rc, _, modules = proc.stdout.strip().partition(" ")
    assert rc.isdigit(), proc.stdout + proc.stderr
    return int(rc), ast.literal_eval(modules)


# What a `why` that succeeds does not load either, though each is cheap on its own (~0.1 ms, most of them extension
# modules to dlopen): the ELF and cache readers decode without struct, read without mmap, the loader's output is
# polled without select, JSON is escaped without _json, and the error hierarchy is imported when there is an error.
WHY_ALSO_SPARED = ("struct", "_struct", "mmap", "select", "_json", "imagesmith.errors")


def test_why_imports_none_of_the_forbidden_modules(tree: Path) -> None:
    assert _imported_after(["doctor", "why", str(tree / "opt/app/libtop.so"), "--json"]) == (0, [])
    rc, spared = _imported_after(["doctor", "why", str(tree / "opt/app/libtop.so")], modules=WHY_ALSO_SPARED)
    assert rc == 0 and spared == []
    # and an error still reads as one line with its exit code (the hierarchy imported on the way out)
    rc, _ = _imported_after(["doctor", "why", str(tree / "no/such.so")], modules=WHY_ALSO_SPARED)
    assert rc == 2
    rc, imported = _imported_after(["doctor", "why", "/opt/app/libtop.so", "--root", str(tree)])
    assert rc == 1 and imported == []  # 1: the tree holds no libc for libtop's own needs


def test_full_doctor_on_a_gpu_node_imports_none_of_the_forbidden_modules(node: object) -> None:
    """The simulated GPU node of the bench: the probe runs (in a child), the matrix is consulted."""
    from tests.doctor.conftest import Node

    assert isinstance(node, Node)
    node.gpu_node("550.90.07", cuda=12040)
    node.cudart(12)
    rc, imported = _imported_after(["doctor", "--root", str(node.root), "--json"], env=node.env)
    assert rc in (0, 1) and imported == []
