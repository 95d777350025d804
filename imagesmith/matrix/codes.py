"""The one vocabulary of reason codes: the matrix's verdict reasons, the doctor's findings (and the fleet's
verdicts) use these strings and no others, each defined once here with its meaning.

A plain class of constants rather than an ``enum.Enum``: ``enum`` costs ~4 ms to import, a sixth of
``matrix check``'s budget, and the codes travel as strings in JSON anyway. ``CATALOGUE`` is the
enumeration: every code in order of appearance in a report, with its severity and meaning;
docs/reason-codes.md is its table (a test holds the two together).

Severity is stated once, in the doctor's words (``error``/``warning``/``info``); the matrix's verdict
reasons say the same thing as ``fail``/``caveat``/``info``.
"""

from __future__ import annotations

from imagesmith.contract.record import record


class Code:
    """The codes, as constants (``Code.DRIVER_TOO_OLD == "DRIVER_TOO_OLD"``)."""

    # Whether a GPU is there at all (doctor).
    NO_GPU_VISIBLE = "NO_GPU_VISIBLE"
    DEVICE_NODES_MISSING = "DEVICE_NODES_MISSING"
    NVML_UNKNOWN_ERROR = "NVML_UNKNOWN_ERROR"
    DRIVER_CAPABILITIES = "DRIVER_CAPABILITIES"
    LIBCUDA_NOT_FOUND = "LIBCUDA_NOT_FOUND"
    LIBCUDA_STUB = "LIBCUDA_STUB"
    DRIVER_LIBRARY_MISMATCH = "DRIVER_LIBRARY_MISMATCH"
    # The driver against the GPU and the CUDA runtime (matrix rules; the doctor reports them).
    GPU_UNSUPPORTED_BY_DRIVER = "GPU_UNSUPPORTED_BY_DRIVER"
    DRIVER_TOO_OLD = "DRIVER_TOO_OLD"
    MINOR_VERSION_COMPATIBLE = "MINOR_VERSION_COMPATIBLE"
    PTX_JIT_UNSUPPORTED = "PTX_JIT_UNSUPPORTED"
    PTX_JIT_CAVEAT = "PTX_JIT_CAVEAT"
    FORWARD_COMPAT_UNSUPPORTED_GPU = "FORWARD_COMPAT_UNSUPPORTED_GPU"
    FORWARD_COMPAT_UNSUPPORTED_BRANCH = "FORWARD_COMPAT_UNSUPPORTED_BRANCH"
    FORWARD_COMPAT_NOT_NEEDED = "FORWARD_COMPAT_NOT_NEEDED"
    FORWARD_COMPAT = "FORWARD_COMPAT"
    BACKWARD_COMPATIBLE = "BACKWARD_COMPATIBLE"
    # The build against the GPU (matrix rules; the doctor reads the fatbins).
    NO_KERNEL_IMAGE = "NO_KERNEL_IMAGE"
    KERNEL_IMAGE = "KERNEL_IMAGE"
    CPU_ONLY_BUILD = "CPU_ONLY_BUILD"
    # Libraries the loader picks (doctor; the cuDNN rule is the matrix's).
    LIBRARY_SHADOWED = "LIBRARY_SHADOWED"
    MIXED_CUDA_ORIGINS = "MIXED_CUDA_ORIGINS"
    CUDNN_MISMATCH = "CUDNN_MISMATCH"
    GLIBC_TOO_OLD = "GLIBC_TOO_OLD"
    LD_LIBRARY_PATH_EMPTY_ELEMENT = "LD_LIBRARY_PATH_EMPTY_ELEMENT"
    # An input the data does not know (matrix check --json), an image that cannot be read (doctor --image).
    UNKNOWN_VERSION = "UNKNOWN_VERSION"
    IMAGE_UNREADABLE = "IMAGE_UNREADABLE"


@record
class CodeInfo:
    code: str
    severity: str  # error | warning | info (matrix: fail | caveat | info); "-" when it is not a finding
    where: str  # matrix | doctor | both
    meaning: str


def _info(code: str, severity: str, where: str, meaning: str) -> CodeInfo:
    return CodeInfo(code=code, severity=severity, where=where, meaning=meaning)


CATALOGUE: tuple[CodeInfo, ...] = (
    _info(Code.NO_GPU_VISIBLE, "error", "doctor", "No GPU reaches the process: none requested, hidden by NVIDIA_VISIBLE_DEVICES/CUDA_VISIBLE_DEVICES, or no driver on the node."),
    _info(Code.DEVICE_NODES_MISSING, "error", "doctor", "The driver sees GPUs but /dev/nvidiactl, /dev/nvidia-uvm or /dev/nvidia<N> are missing in the container."),
    _info(Code.NVML_UNKNOWN_ERROR, "error", "doctor", "'Failed to initialize NVML: Unknown Error' with the device nodes present: the container lost its device cgroup access (a systemctl daemon-reload on the host)."),
    _info(Code.DRIVER_CAPABILITIES, "error", "doctor", "NVML is mounted but libcuda is not: the container lacks the 'compute' driver capability."),
    _info(Code.LIBCUDA_NOT_FOUND, "error", "doctor", "libcuda.so.1 is not on the loader's search path (CUDA error 35, 'found no NVIDIA driver')."),
    _info(Code.LIBCUDA_STUB, "error", "doctor", "The loader picks the toolkit's link-time stub libcuda (CUDA error 34)."),
    _info(Code.DRIVER_LIBRARY_MISMATCH, "error", "doctor", "User-space driver libraries of different driver versions, or not the kernel module's version (NVML 'Driver/library version mismatch', CUDA error 803): typically a driver upgrade under a running pod."),
    _info(Code.GPU_UNSUPPORTED_BY_DRIVER, "error", "both", "The driver branch dropped the GPU's architecture, or predates the GPU."),
    _info(Code.DRIVER_TOO_OLD, "error", "both", "Neither backward nor minor-version compatibility lets the CUDA runtime run on this driver (CUDA error 35)."),
    _info(Code.MINOR_VERSION_COMPATIBLE, "warning", "both", "Runs under minor-version compatibility: the driver is older than the runtime's toolkit but above its major's floor; newer-driver APIs fail (error 36) and PTX from the newer toolkit cannot be JIT-compiled (see PTX_JIT_CAVEAT)."),
    _info(Code.PTX_JIT_UNSUPPORTED, "error", "both", "The GPU needs the build's PTX and the driver is older than the PTX's toolkit (error 222)."),
    _info(Code.PTX_JIT_CAVEAT, "warning", "both", "PTX is JIT-compiled here (slow first launch), or kernels compiled at run time (torch.compile/Triton, NVRTC) need a newer driver."),
    _info(Code.FORWARD_COMPAT_UNSUPPORTED_GPU, "error", "both", "A cuda-compat (forward-compatibility) user-mode driver on a GPU that does not support it: GeForce/consumer (error 804)."),
    _info(Code.FORWARD_COMPAT_UNSUPPORTED_BRANCH, "error", "both", "The cuda-compat package is not supported on the node's driver branch."),
    _info(Code.FORWARD_COMPAT_NOT_NEEDED, "warning", "both", "A cuda-compat package on a driver already as new: remove it."),
    _info(Code.FORWARD_COMPAT, "warning", "matrix", "Runs through a cuda-compat package (supported branches, data-center GPUs, compat libraries first on the loader path)."),
    _info(Code.BACKWARD_COMPATIBLE, "info", "matrix", "The driver's own CUDA is at least the runtime's."),
    _info(Code.NO_KERNEL_IMAGE, "error", "both", "Neither SASS for the GPU's architecture nor PTX at or below its capability (error 209, 'no kernel image')."),
    _info(Code.KERNEL_IMAGE, "info", "matrix", "The build carries SASS (or PTX) the GPU runs."),
    _info(Code.CPU_ONLY_BUILD, "error", "doctor", "A CPU-only framework build (torch +cpu, jaxlib without a CUDA plugin, tensorflow-cpu) where GPUs are visible: it silently runs on the CPU."),
    _info(Code.LIBRARY_SHADOWED, "warning", "doctor", "The loader would pick another copy of a CUDA-family library than the one the framework or the installed nvidia-* wheels ship."),
    _info(Code.MIXED_CUDA_ORIGINS, "warning", "doctor", "CUDA-family libraries that load together come from different origins (wheel, conda, system toolkit) with different CUDA versions."),
    _info(Code.CUDNN_MISMATCH, "error", "both", "The cuDNN that loads is another major, or an older minor, than the one the framework was built against."),
    _info(Code.GLIBC_TOO_OLD, "error", "doctor", "A library needs a newer GLIBC_ symbol version than the image's glibc."),
    _info(Code.LD_LIBRARY_PATH_EMPTY_ELEMENT, "warning", "doctor", "LD_LIBRARY_PATH has an empty element, which the loader reads as the current directory."),
    _info(Code.UNKNOWN_VERSION, "-", "matrix", "(matrix check --json only) the framework, version, build or GPU is not in the data; exit 2."),
    _info(Code.IMAGE_UNREADABLE, "error", "doctor", "(doctor --image) the image's labels could not be read: no engine or registry answered, or no such image; the exit code says which (1 no such image, 2 bad reference, 3 unreachable or refused)."),
)  # fmt: skip

ORDER: dict[str, int] = {info.code: i for i, info in enumerate(CATALOGUE)}
SEVERITY: dict[str, str] = {info.code: info.severity for info in CATALOGUE}
