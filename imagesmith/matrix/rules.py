"""NVIDIA's compatibility rules as pure functions over the facts in ``Knowledge``.

* Backward compatibility: a runtime of CUDA X runs on any driver whose own CUDA is >= X.
* Minor-version compatibility (CUDA >= 11): within a major, a runtime runs on a driver at or above the
  family floor even if the driver is older than the toolkit, with a limited feature set; PTX produced by
  the newer toolkit cannot be JIT-compiled by the older driver.
* Forward compatibility: a cuda-compat package brings a newer user-mode driver, only on eligible GPUs
  (data center, select RTX, Jetson) and only on the branches NVIDIA lists for that package.
* Binary compatibility: SASS for X.y runs on X.z with z >= y (same major); PTX for X.Y is JIT-compiled
  for any capability >= X.Y.
* Drivers drop old architectures (Kepler after R470; Maxwell, Pascal, Volta after R580) and a driver
  older than a GPU's first toolkit does not know the GPU.

Standard library only: the doctor uses these rules in slim images.
"""

from __future__ import annotations

from imagesmith.contract.record import record
from imagesmith.matrix.codes import Code
from imagesmith.matrix.knowledge import Knowledge
from imagesmith.matrix.model import Gpu
from imagesmith.matrix.versions import NvVersion

TYPE_CHECKING = False  # typing costs ~10 ms here; mypy treats this name as True
if TYPE_CHECKING:
    from typing import Literal

    Severity = Literal["info", "caveat", "fail"]

WORKS = "works"
CAVEATS = "works-with-caveats"
FAILS = "fails"


@record
class Reason:
    code: str
    message: str
    severity: Severity

    def to_json(self) -> dict[str, str]:
        return {"code": self.code, "severity": self.severity, "message": self.message}


@record
class Verdict:
    verdict: str
    reasons: tuple[Reason, ...]

    @classmethod
    def of(cls, *reasons: Reason) -> Verdict:
        severities = {r.severity for r in reasons}
        verdict = FAILS if "fail" in severities else CAVEATS if "caveat" in severities else WORKS
        return cls(verdict=verdict, reasons=tuple(reasons))

    def __add__(self, other: Verdict) -> Verdict:
        return Verdict.of(*self.reasons, *other.reasons)

    @property
    def ok(self) -> bool:
        return self.verdict != FAILS

    def codes(self) -> tuple[str, ...]:
        return tuple(r.code for r in self.reasons)


def _cuda(v: NvVersion) -> str:
    return str(v.truncate(2))


def _toolkit_driver_hint(kb: Knowledge, cuda: NvVersion) -> str:
    row = kb.toolkit_min_driver(cuda)
    return (
        f" (the CUDA {_cuda(cuda)} toolkit driver is >= {row.min_driver})" if row and row.min_driver else ""
    )


def gpu_on_driver(kb: Knowledge, *, gpu: Gpu, driver: NvVersion) -> Verdict:
    """Does this driver branch still (or already) support this GPU?"""
    arch = kb.architectures.get(gpu.architecture)
    if arch is not None and arch.last_driver_branch is not None and driver.major > arch.last_driver_branch:
        return Verdict.of(
            Reason(
                code=Code.GPU_UNSUPPORTED_BY_DRIVER,
                severity="fail",
                message=(
                    f"driver {driver} (R{driver.major}) no longer supports {arch.name} GPUs such as {gpu.name}: "
                    f"R{arch.last_driver_branch} is the last branch for them; run an R{arch.last_driver_branch} driver on this node"
                ),
            )
        )
    needs = gpu.min_cuda or (arch.first_cuda if arch else None)
    native = kb.driver_max_cuda(driver)
    if needs is not None and native is not None and native.truncate(2) < needs.truncate(2):
        return Verdict.of(
            Reason(
                code=Code.GPU_UNSUPPORTED_BY_DRIVER,
                severity="fail",
                message=(
                    f"driver {driver} (CUDA {_cuda(native)}) predates {gpu.name} (sm {gpu.capability}), which needs a "
                    f"driver for CUDA >= {_cuda(needs)}; upgrade the node's driver"
                ),
            )
        )
    return Verdict.of()


def runtime_on_driver(
    kb: Knowledge,
    *,
    cuda: NvVersion,
    driver: NvVersion,
    gpu: Gpu | None = None,
    compat_cuda: NvVersion | None = None,
) -> Verdict:
    """Can a CUDA ``cuda`` runtime (libcudart) talk to this driver, optionally through cuda-compat?"""
    reasons: list[Reason] = []
    native = kb.driver_max_cuda(driver)
    effective = native
    if compat_cuda is not None:
        forward = _forward_compat(kb, driver=driver, gpu=gpu, compat_cuda=compat_cuda, native=native)
        reasons.extend(forward.reasons)
        if not forward.ok:
            return Verdict.of(*reasons)
        if any(r.code == Code.FORWARD_COMPAT for r in forward.reasons):
            effective = compat_cuda if native is None else max(native, compat_cuda.truncate(2))
    wanted = cuda.truncate(2)
    if effective is not None and wanted <= effective.truncate(2):
        via = "the cuda-compat user-mode driver" if effective != native else f"driver {driver}"
        reasons.append(
            Reason(
                code=Code.BACKWARD_COMPATIBLE,
                severity="info",
                message=f"{via} supports CUDA {_cuda(effective)} >= the CUDA {_cuda(wanted)} runtime",
            )
        )
        return Verdict.of(*reasons)
    family = kb.family(cuda.major)
    native_text = f"CUDA {_cuda(native)}" if native else "no known CUDA version"
    if family is not None and family.minor_version_compatibility and family.mvc_min_driver is not None:
        same_major_or_newer = native is not None and native.major >= cuda.major
        if driver >= family.mvc_min_driver and same_major_or_newer:
            reasons.append(
                Reason(
                    code=Code.MINOR_VERSION_COMPATIBLE,
                    severity="caveat",
                    message=(
                        f"driver {driver} ({native_text}) is older than the CUDA {_cuda(wanted)} runtime but above the "
                        f"CUDA {cuda.major}.x minor-version-compatibility floor {family.mvc_min_driver}; APIs that need "
                        f"a newer driver return cudaErrorCallRequiresNewerDriver"
                    ),
                )
            )
            reasons.append(
                Reason(
                    code=Code.PTX_JIT_CAVEAT,
                    severity="caveat",
                    message=(
                        f"this driver cannot JIT-compile PTX emitted by CUDA {_cuda(wanted)}: kernels compiled at run time "
                        f"(torch.compile/Triton, NVRTC) fail with 'the provided PTX was compiled with an unsupported "
                        f"toolchain' (222); fix: a driver for CUDA >= {_cuda(wanted)}{_toolkit_driver_hint(kb, cuda)}"
                    ),
                )
            )
            return Verdict.of(*reasons)
        floor = f"; the CUDA {cuda.major}.x floor is {family.mvc_min_driver}"
    else:
        floor = ""
    reasons.append(
        Reason(
            code=Code.DRIVER_TOO_OLD,
            severity="fail",
            message=(
                f"driver {driver} supports {native_text}, older than the CUDA {_cuda(wanted)} runtime{floor}: "
                f"'CUDA driver version is insufficient for CUDA runtime version' (35); upgrade the driver"
                f"{_toolkit_driver_hint(kb, cuda)}, use a build for CUDA <= {_cuda(native) if native else '?'}"
                + (", or install cuda-compat on a data-center GPU" if cuda.major >= 11 else "")
            ),
        )
    )
    return Verdict.of(*reasons)


def _forward_compat(
    kb: Knowledge, *, driver: NvVersion, gpu: Gpu | None, compat_cuda: NvVersion, native: NvVersion | None
) -> Verdict:
    package = kb.find_compat_package(_cuda(compat_cuda))
    if gpu is not None and gpu.forward_compat == "ineligible":
        return Verdict.of(
            Reason(
                code=Code.FORWARD_COMPAT_UNSUPPORTED_GPU,
                severity="fail",
                message=(
                    f"{package.package} only works on data-center GPUs, select NGC-Ready RTX SKUs and Jetson; on "
                    f"{gpu.name} ({gpu.segment}) CUDA fails with 'forward compatibility was attempted on non supported HW' "
                    f"(804): remove the compat libraries from the loader path and use a build for CUDA <= "
                    f"{_cuda(native) if native else '?'}"
                ),
            )
        )
    if native is not None and package.cuda.truncate(2) <= native.truncate(2):
        return Verdict.of(
            Reason(
                code=Code.FORWARD_COMPAT_NOT_NEEDED,
                severity="caveat",
                message=(
                    f"driver {driver} already supports CUDA {_cuda(native)}; {package.package} is not newer and an "
                    f"older compat package on a newer driver is unsupported (803 risk): remove it"
                ),
            )
        )
    if driver.major not in package.supported_branches:
        supported = ", ".join(f"R{b}" for b in package.supported_branches) or "none"
        return Verdict.of(
            Reason(
                code=Code.FORWARD_COMPAT_UNSUPPORTED_BRANCH,
                severity="fail",
                message=(
                    f"NVIDIA does not support {package.package} on R{driver.major} (supported base branches: {supported}); "
                    f"end-of-life and new-feature branches are not forward-compatibility targets"
                ),
            )
        )
    caveat = ""
    if gpu is None or gpu.forward_compat == "unknown":
        caveat = " if the GPU is eligible (data-center, select NGC-Ready RTX, Jetson)"
    return Verdict.of(
        Reason(
            code=Code.FORWARD_COMPAT,
            severity="caveat",
            message=(
                f"{package.package} on R{driver.major} provides CUDA {_cuda(package.cuda)}{caveat}; its libcuda must be "
                f"first on the loader path (LD_LIBRARY_PATH=/usr/local/cuda-{_cuda(package.cuda)}/compat), no OpenGL/Vulkan interop"
            ),
        )
    )


def kernel_for_gpu(
    *, sass: tuple[NvVersion, ...], ptx: tuple[NvVersion, ...], capability: NvVersion
) -> Verdict:
    """Does the build carry code this GPU can execute: SASS of the same major, or PTX to JIT?"""
    cap = capability.truncate(2)
    sass_match = [s for s in sass if s.major == cap.major and s.minor <= cap.minor]
    if sass_match:
        best = max(sass_match)
        how = "native" if best == cap else f"binary-compatible within major {cap.major}"
        return Verdict.of(
            Reason(
                code=Code.KERNEL_IMAGE, severity="info", message=f"SASS {best.sm} runs on {cap.sm} ({how})"
            )
        )
    ptx_match = [p for p in ptx if p <= cap]
    if ptx_match:
        best = max(ptx_match)
        return Verdict.of(
            Reason(
                code=Code.PTX_JIT_CAVEAT,
                severity="caveat",
                message=(
                    f"no SASS for {cap.sm}: the driver JIT-compiles compute_{best.major}{best.minor} PTX at first launch "
                    f"(slow first start, cached in ~/.nv/ComputeCache) and needs a driver at least as new as the build's toolkit"
                ),
            )
        )
    carried = ", ".join([s.sm for s in sass] + [f"compute_{p.major}{p.minor}" for p in ptx]) or "nothing"
    return Verdict.of(
        Reason(
            code=Code.NO_KERNEL_IMAGE,
            severity="fail",
            message=(
                f"the build carries {carried} and no code {cap.sm} can run: 'no kernel image is available for execution "
                f"on the device' (209); choose a build whose arch list covers {cap.sm}"
            ),
        )
    )


def evaluate(
    kb: Knowledge,
    *,
    cuda: NvVersion,
    sass: tuple[NvVersion, ...],
    ptx: tuple[NvVersion, ...],
    driver: NvVersion,
    gpu: Gpu,
    compat_cuda: NvVersion | None = None,
) -> Verdict:
    """The whole answer for one build on one node: GPU vs driver, runtime vs driver, kernels vs GPU."""
    node = gpu_on_driver(kb, gpu=gpu, driver=driver)
    runtime = runtime_on_driver(kb, cuda=cuda, driver=driver, gpu=gpu, compat_cuda=compat_cuda)
    kernel = kernel_for_gpu(sass=sass, ptx=ptx, capability=gpu.capability)
    verdict = node + runtime + kernel
    needs_jit = Code.PTX_JIT_CAVEAT in kernel.codes()
    if needs_jit and Code.MINOR_VERSION_COMPATIBLE in runtime.codes():
        # The GPU only runs this build through PTX, and the driver is older than the PTX's toolkit.
        verdict = verdict + Verdict.of(
            Reason(
                code=Code.PTX_JIT_UNSUPPORTED,
                severity="fail",
                message=(
                    f"{gpu.name} needs the build's PTX JIT-compiled, but driver {driver} is older than CUDA "
                    f"{_cuda(cuda)}: 'the provided PTX was compiled with an unsupported toolchain' (222); "
                    f"upgrade the driver{_toolkit_driver_hint(kb, cuda)}"
                ),
            )
        )
    return verdict


def cudnn_for_build(*, loaded: NvVersion, built_with: NvVersion) -> Verdict:
    """Does the cuDNN that loads serve a build made against ``built_with``? cuDNN keeps its API and ABI
    within a major, and a build needs at least the minor it was made with."""
    if loaded.major == built_with.major and loaded.truncate(2) >= built_with.truncate(2):
        return Verdict.of()
    return Verdict.of(
        Reason(
            code=Code.CUDNN_MISMATCH,
            severity="fail",
            message=(
                f"built against cuDNN {built_with} but cuDNN {loaded} loads: cuDNN needs the same major and an "
                f"equal or higher minor"
            ),
        )
    )
