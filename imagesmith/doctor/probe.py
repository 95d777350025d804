"""The runtime probe: load the resolved libcuda and libnvidia-ml and ask them for their versions and GPUs.

It runs in a forked child, never in the doctor's own process: a hanging driver call, a crash in a broken
library or CUDA state cannot affect the doctor, which enforces a hard timeout and kills the child. Forking
(rather than starting a second interpreter, ~11 ms, plus pynvml, ~35 ms to import) keeps the full doctor
on a GPU node within 2.5x interpreter start. NVML is called through ctypes' C layer (``dlcall``: the
``ctypes`` package costs the child ~1.6 ms more to import) with the same entry points the official bindings
(nvidia-ml-py) use. Standard library only; each step's facts travel to the parent as
soon as they exist (``marshal`` records on a pipe), so a cuInit that hangs still leaves NVML's answers.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # mypy treats this name as True
if TYPE_CHECKING:
    from imagesmith.doctor import dlcall as dl

Record = dict[str, object]


class Running:
    """A probe started by ``start``; ``finish`` collects it (the doctor keeps collecting facts meanwhile)."""

    __slots__ = ("deadline", "pid", "read_fd", "timeout")

    def __init__(self, pid: int, read_fd: int, deadline: float, timeout: float) -> None:
        self.pid, self.read_fd, self.deadline, self.timeout = pid, read_fd, deadline, timeout


def start(libcuda: str | None, nvml: str | None, timeout: float) -> Running:
    """Fork the child that loads the driver libraries (host paths); it runs while the parent goes on."""
    import time

    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into the doctor
        code = 0
        try:
            os.close(read_fd)
            _child(write_fd, libcuda, nvml)
        except BaseException:  # whatever happens in the child must end in _exit
            code = 70
        finally:
            os._exit(code)
    os.close(write_fd)
    return Running(pid, read_fd, time.monotonic() + timeout, timeout)


def finish(probe: Running) -> tuple[dict[str, Record], str | None]:
    """({"nvml": {...}, "libcuda": {...}}, an error or None): what the child said before it ended or the
    deadline passed (then it is killed)."""
    import marshal
    import select
    import time

    chunks: list[bytes] = []
    error = None
    try:
        while True:
            left = probe.deadline - time.monotonic()
            if left <= 0:
                os.kill(probe.pid, 9)  # SIGKILL (the signal module costs ~2 ms to import)
                error = f"probe timed out after {probe.timeout:g} s (a driver call hung)"
                break
            ready, _, _ = select.select([probe.read_fd], [], [], left)
            if ready:
                chunk = os.read(probe.read_fd, 1 << 16)
                if not chunk:
                    break
                chunks.append(chunk)
    finally:
        os.close(probe.read_fd)
        _, status = os.waitpid(probe.pid, 0)
    if error is None and os.WIFSIGNALED(status):
        error = f"probe killed by signal {os.WTERMSIG(status)} (a driver library crashed)"
    elif error is None and os.WEXITSTATUS(status) != 0:
        error = f"probe exited with {os.WEXITSTATUS(status)}"
    data: dict[str, Record] = {}
    stream = b"".join(chunks)
    while len(stream) >= 4:
        size = int.from_bytes(stream[:4], "little")
        if len(stream) < 4 + size:
            break  # the last record was cut by the kill
        try:
            record = marshal.loads(stream[4 : 4 + size])
        except (ValueError, EOFError, TypeError):
            break
        if isinstance(record, dict):
            data.update(record)
        stream = stream[4 + size :]
    return data, error


def cancel(probe: Running) -> None:
    """Stop a probe whose answer is no longer wanted (it was started on a guess that turned out wrong)."""
    os.kill(probe.pid, 9)
    os.close(probe.read_fd)
    os.waitpid(probe.pid, 0)


def _send(fd: int, record: Record) -> None:
    import marshal

    blob = marshal.dumps(record)
    os.write(fd, len(blob).to_bytes(4, "little") + blob)


def _child(fd: int, libcuda: str | None, nvml: str | None) -> None:
    global dl  # imported here, in the child only: the parent never pays for it
    from imagesmith.doctor import dlcall as dl

    # NVML first: its facts reach the parent before a cuInit that may hang.
    if nvml:
        out: Record = {}
        _nvml(nvml, out)
        _send(fd, {"nvml": out})
    if libcuda:
        out = {}
        _libcuda(libcuda, out)
        _send(fd, {"libcuda": out})


def _libcuda(path: str, out: Record) -> None:
    try:
        lib = dl.CDLL(path)
    except OSError as exc:
        out["libcuda_error"] = str(exc)
        return
    version = dl.c_int(0)
    try:
        out["cu_driver_version_rc"] = int(lib.cuDriverGetVersion(dl.byref(version)))
        out["cu_driver_version"] = version.value
        out["cu_init"] = int(lib.cuInit(0))
    except AttributeError as exc:
        out["libcuda_error"] = f"missing symbol: {exc}"


NVML_SUCCESS = 0
_NAME = 96  # NVML_DEVICE_NAME_V2_BUFFER_SIZE
_DRIVER = 80  # NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE


def _nvml(path: str, out: Record) -> None:
    try:
        lib = dl.CDLL(path)
    except OSError as exc:
        out["nvml_error"] = str(exc)
        return

    def message(rc: int) -> str:
        try:
            describe = lib.nvmlErrorString
        except AttributeError:
            return f"NVML error {rc}"
        describe.restype = dl.c_char_p
        text = describe(rc)
        return text.decode(errors="replace") if text else f"NVML error {rc}"

    init = getattr(lib, "nvmlInitWithFlags", None)
    try:
        rc = int(init(0) if init is not None else lib.nvmlInit_v2())
    except AttributeError as exc:
        out["nvml_error"] = f"missing symbol: {exc}"
        return
    if rc != NVML_SUCCESS:
        out["nvml_error"] = message(rc)
        return
    try:
        buf = dl.create_string_buffer(_NAME)
        rc = int(lib.nvmlSystemGetDriverVersion(buf, _DRIVER))
        if rc != NVML_SUCCESS:
            out["nvml_error"] = message(rc)
            return
        out["nvml_driver"] = buf.value.decode(errors="replace")
        cuda = dl.c_int(0)
        get_cuda = (
            getattr(lib, "nvmlSystemGetCudaDriverVersion_v2", None) or lib.nvmlSystemGetCudaDriverVersion
        )
        if int(get_cuda(dl.byref(cuda))) == NVML_SUCCESS:
            out["nvml_cuda"] = cuda.value
        count = dl.c_uint(0)
        rc = int(lib.nvmlDeviceGetCount_v2(dl.byref(count)))
        if rc != NVML_SUCCESS:
            out["nvml_error"] = message(rc)
            return
        out["gpus"] = [_gpu(lib, i) for i in range(count.value)]
    except AttributeError as exc:
        out["nvml_error"] = f"missing symbol: {exc}"
    finally:
        shutdown = getattr(lib, "nvmlShutdown", None)
        if shutdown is not None:
            shutdown()


def _gpu(lib: dl.CDLL, index: int) -> Record:
    gpu: Record = {"index": index, "name": "?", "brand": None, "capability": None, "memory_mib": None}
    handle = dl.c_void_p()
    if int(lib.nvmlDeviceGetHandleByIndex_v2(index, dl.byref(handle))) != NVML_SUCCESS:
        return gpu
    name = dl.create_string_buffer(_NAME)
    if int(lib.nvmlDeviceGetName(handle, name, _NAME)) == NVML_SUCCESS:
        gpu["name"] = name.value.decode(errors="replace")
    brand = dl.c_int(0)
    if int(lib.nvmlDeviceGetBrand(handle, dl.byref(brand))) == NVML_SUCCESS:
        gpu["brand"] = brand.value
    major, minor = dl.c_int(0), dl.c_int(0)
    if int(lib.nvmlDeviceGetCudaComputeCapability(handle, dl.byref(major), dl.byref(minor))) == NVML_SUCCESS:
        gpu["capability"] = f"{major.value}.{minor.value}"
    memory = (dl.c_ulonglong * 3)()  # nvmlMemory_t (v1): total, free, used, in bytes
    if int(lib.nvmlDeviceGetMemoryInfo(handle, dl.byref(memory))) == NVML_SUCCESS:
        gpu["memory_mib"] = int(memory[0]) // (1 << 20)
    return gpu
