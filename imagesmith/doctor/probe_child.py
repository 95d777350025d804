"""Runs in a subprocess: load the resolved libcuda / libnvidia-ml and ask them for their versions.

Kept out of the doctor's own process so that a hanging driver call, a crash in a broken library, or
CUDA state can never affect it; the parent enforces a hard timeout. Standard library plus pynvml.
Usage: ``python -I probe_child.py '{"libcuda": PATH|null, "nvml": PATH|null}'``; prints one JSON line.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import sys
from typing import Any


def _libcuda(path: str, out: dict[str, Any]) -> None:
    try:
        lib = ctypes.CDLL(path)
    except OSError as exc:
        out["libcuda_error"] = str(exc)
        return
    version = ctypes.c_int(0)
    try:
        out["cu_driver_version_rc"] = int(lib.cuDriverGetVersion(ctypes.byref(version)))
        out["cu_driver_version"] = version.value
        out["cu_init"] = int(lib.cuInit(0))
    except AttributeError as exc:
        out["libcuda_error"] = f"missing symbol: {exc}"


def _nvml(path: str, out: dict[str, Any]) -> None:
    # Load the resolved file first: pynvml's CDLL("libnvidia-ml.so.1") then reuses it by SONAME.
    try:
        ctypes.CDLL(path)
        import pynvml
    except (OSError, ImportError) as exc:
        out["nvml_error"] = str(exc)
        return
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        out["nvml_error"] = str(exc)
        return
    try:
        driver = pynvml.nvmlSystemGetDriverVersion()
        out["nvml_driver"] = driver.decode() if isinstance(driver, bytes) else str(driver)
        try:
            out["nvml_cuda"] = int(pynvml.nvmlSystemGetCudaDriverVersion_v2())
        except pynvml.NVMLError:
            out["nvml_cuda"] = int(pynvml.nvmlSystemGetCudaDriverVersion())
        gpus = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(i)
            name = pynvml.nvmlDeviceGetName(handle)
            gpu: dict[str, Any] = {
                "index": i,
                "name": name.decode() if isinstance(name, bytes) else str(name),
            }
            try:
                gpu["brand"] = int(pynvml.nvmlDeviceGetBrand(handle))
            except pynvml.NVMLError:
                gpu["brand"] = None
            try:
                major, minor = pynvml.nvmlDeviceGetCudaComputeCapability(handle)
                gpu["capability"] = f"{major}.{minor}"
            except pynvml.NVMLError:
                gpu["capability"] = None
            try:
                gpu["memory_mib"] = int(pynvml.nvmlDeviceGetMemoryInfo(handle).total) // (1 << 20)
            except pynvml.NVMLError:
                gpu["memory_mib"] = None
            gpus.append(gpu)
        out["gpus"] = gpus
    except pynvml.NVMLError as exc:
        out["nvml_error"] = str(exc)
    finally:
        with contextlib.suppress(pynvml.NVMLError):
            pynvml.nvmlShutdown()


def main(argv: list[str]) -> int:
    request = json.loads(argv[1])
    out: dict[str, Any] = {}
    # One line per step, NVML first: facts gathered before a hanging cuInit still reach the parent.
    if request.get("nvml"):
        _nvml(request["nvml"], out)
        print(json.dumps({"nvml": out}), flush=True)
        out = {}
    if request.get("libcuda"):
        _libcuda(request["libcuda"], out)
        print(json.dumps({"libcuda": out}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
