"""The probe's C calls through ``imagesmith.doctor.dlcall`` (``_ctypes`` directly, cheaper to import in the
forked child) answer exactly what they answer through the ``ctypes`` package, on the simulated node's driver
stubs, on a GPU whose driver call fails, on a library that lacks the symbols and on one that does not load."""

from __future__ import annotations

import ctypes
from pathlib import Path

import pytest

from imagesmith.doctor import dlcall, probe
from tests.doctor.conftest import Node


def _answers(
    monkeypatch: pytest.MonkeyPatch, binding: object, nvml: str, libcuda: str
) -> dict[str, dict[str, object]]:
    monkeypatch.setattr(probe, "dl", binding, raising=False)
    nv: dict[str, object] = {}
    cu: dict[str, object] = {}
    probe._nvml(nvml, nv)
    probe._libcuda(libcuda, cu)
    return {"nvml": nv, "libcuda": cu}


@pytest.mark.parametrize("init_rc", [0, 999])
def test_dlcall_answers_what_ctypes_answers(
    node: Node, monkeypatch: pytest.MonkeyPatch, init_rc: int
) -> None:
    d = "/usr/local/nvidia/lib64"
    node.libcuda(d, "550.90.07", cuda=12040, init_rc=init_rc)
    node.nvml(d, "550.90.07", cuda=12040, count=2, init_rc=init_rc, gpu="NVIDIA A100-SXM4-80GB", cc=(8, 0))
    nvml, libcuda = str(node.path(f"{d}/libnvidia-ml.so.1")), str(node.path(f"{d}/libcuda.so.1"))
    through_ctypes = _answers(monkeypatch, ctypes, nvml, libcuda)
    assert _answers(monkeypatch, dlcall, nvml, libcuda) == through_ctypes
    if init_rc == 0:
        gpus = through_ctypes["nvml"]["gpus"]
        assert through_ctypes["nvml"]["nvml_driver"] == "550.90.07"
        assert isinstance(gpus, list) and len(gpus) == 2


def test_dlcall_fails_as_ctypes_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    no_symbols = "libc.so.6"  # loads, but has none of NVML's or CUDA's entry points
    missing = str(tmp_path / "libnvidia-ml.so.1")  # does not load
    for nvml, libcuda in ((no_symbols, no_symbols), (missing, missing)):
        through_ctypes = _answers(monkeypatch, ctypes, nvml, libcuda)
        assert _answers(monkeypatch, dlcall, nvml, libcuda) == through_ctypes
        assert "nvml_error" in through_ctypes["nvml"] and "libcuda_error" in through_ctypes["libcuda"]


def test_dlcall_buffers_and_return_types() -> None:
    buf = dlcall.create_string_buffer(8)
    assert buf.value == b"" and len(buf) == 8
    libc = dlcall.CDLL("libc.so.6")
    assert libc.abs(-3) == 3 and libc.abs is libc.abs  # looked up once, kept
    libc.getenv.restype = dlcall.c_char_p
    assert libc.getenv(b"IMAGESMITH_SURELY_UNSET") is None
    with pytest.raises(AttributeError):
        libc.surely_no_such_symbol  # noqa: B018
    with pytest.raises(OSError):
        dlcall.CDLL("/nonexistent/libnope.so")
