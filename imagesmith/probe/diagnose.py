"""Pure rules: collected facts -> findings with a stable code, severity, cause, evidence and fix.

Driver/runtime/GPU verdicts come from ``imagesmith.matrix.rules``; this module only decides which
facts to feed them and how to phrase what the loader did.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from imagesmith.contract.record import field, record
from imagesmith.probe.facts import Facts, Library

if TYPE_CHECKING:
    from imagesmith.matrix.knowledge import Knowledge
    from imagesmith.matrix.model import Gpu
    from imagesmith.matrix.rules import Verdict
    from imagesmith.matrix.versions import NvVersion

CODES = (
    "NO_GPU_VISIBLE",
    "DEVICE_NODES_MISSING",
    "DRIVER_CAPABILITIES",
    "LIBCUDA_NOT_FOUND",
    "LIBCUDA_STUB",
    "DRIVER_TOO_OLD",
    "FORWARD_COMPAT_UNSUPPORTED",
    "DRIVER_LIBRARY_MISMATCH",
    "NO_KERNEL_IMAGE",
    "LIBRARY_SHADOWED",
    "CUDNN_MISMATCH",
    "GLIBC_TOO_OLD",
    "MIXED_CUDA_ORIGINS",
)
RUNTIME_FAMILIES = (
    "cudart",
    "cublas",
    "cudnn",
    "nvjitlink",
    "nvrtc",
    "nccl",
    "cusparse",
    "cufft",
    "curand",
    "cusolver",
)
CUDA_STUB_LIBRARY = 34
SYSTEM_DRIVER_MISMATCH = 803
COMPAT_NOT_SUPPORTED_ON_DEVICE = 804


@record
class Finding:
    code: str
    severity: str  # "error" | "warning" | "info"
    message: str
    evidence: tuple[str, ...]
    fix: str

    def to_json(self) -> dict[str, object]:
        return {
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "evidence": list(self.evidence),
            "fix": self.fix,
        }


@record
class Diagnosis:
    findings: tuple[Finding, ...]
    driver: dict[str, object] = field(default_factory=dict)
    subject: dict[str, object] = field(default_factory=dict)

    @property
    def status(self) -> str:
        severities = {f.severity for f in self.findings}
        return "error" if "error" in severities else "warning" if "warning" in severities else "ok"

    def exit_code(self, *, strict: bool = False) -> int:
        if self.status == "error" or (strict and self.status == "warning"):
            return 1
        return 0

    def to_json(self) -> dict[str, object]:
        return {
            "schema": 1,
            "status": self.status,
            **self.subject,
            "findings": [f.to_json() for f in self.findings],
            "driver": self.driver,
        }


# -- helpers -------------------------------------------------------------------------------------------
def _v(text: str | None) -> NvVersion | None:
    from imagesmith.matrix.versions import NvVersion

    return NvVersion.leading(text)


def _cuda_from_int(value: int | None) -> str | None:
    if not value:
        return None
    return f"{value // 1000}.{(value % 1000) // 10}"


def _kb() -> Knowledge:
    from imagesmith.matrix import knowledge

    return knowledge.load()


def match_gpu(kb: Knowledge, name: str) -> Gpu | None:
    """The knowledge-base GPU for an NVML name ('NVIDIA H100 80GB HBM3' -> H100)."""
    text = re.sub(r"^(NVIDIA|Tesla)\s+", "", name.strip())
    tokens = re.split(r"[\s-]+", text)
    for n in range(len(tokens), 0, -1):
        for candidate in (" ".join(tokens[:n]), "-".join(tokens[:n])):
            gpu = kb.gpu_or_none(candidate) or kb.gpu_or_none(f"NVIDIA {candidate}")
            if gpu is not None:
                return gpu
    return None


def driver_version(facts: Facts) -> str | None:
    """The kernel module is the ground truth; NVML and a driver libcuda file name are fallbacks."""
    if facts.kernel_module:
        return facts.kernel_module
    if facts.probe.nvml_driver:
        return facts.probe.nvml_driver
    for lib in facts.libraries:
        if lib.family in ("cuda", "nvidia-ml") and lib.origin == "driver" and lib.version:
            return lib.version
    return None


def _gpu_evidence(facts: Facts) -> bool:
    return bool(
        facts.kernel_module
        or facts.proc_gpus
        or facts.probe.gpus
        or any(re.fullmatch(r"/dev/nvidia\d+", n) for n in facts.device_nodes)
    )


def _where(lib: Library) -> str:
    dist = f", dist {lib.dist}" if lib.dist else ""
    ver = f" {lib.version}" if lib.version else ""
    return f"{lib.path} ({lib.origin}{ver}{dist})"


def _runtime(facts: Facts) -> Library | None:
    lib = facts.resolved("cudart")
    if lib is not None:
        return lib
    versioned = [x for x in facts.family("cudart") if x.version and x.origin not in ("stub",)]
    return versioned[0] if versioned else None


# -- rules ---------------------------------------------------------------------------------------------
def diagnose(facts: Facts) -> Diagnosis:
    findings: list[Finding] = []
    driver = driver_version(facts)
    gpu_seen = _gpu_evidence(facts)
    findings += _visibility(facts, gpu_seen)
    findings += _libcuda(facts, gpu_seen)
    findings += _driver_vs_runtime(facts, driver)
    findings += _mismatch(facts)
    findings += _kernels(facts)
    findings += _shadowed(facts)
    findings += _cudnn(facts)
    findings += _glibc(facts)
    findings += _mixed(facts)
    order = {"error": 0, "warning": 1, "info": 2}
    findings.sort(key=lambda f: (order.get(f.severity, 3), CODES.index(f.code) if f.code in CODES else 99))
    libcuda = facts.resolved("cuda")
    info: dict[str, object] = {
        "version": driver,
        "kernel_module": facts.kernel_module,
        "nvml_driver": facts.probe.nvml_driver,
        "nvml_cuda": _cuda_from_int(facts.probe.nvml_cuda),
        "cuda_driver_version": _cuda_from_int(facts.probe.cu_driver_version),
        "cu_init": facts.probe.cu_init,
        "libcuda": libcuda.path if libcuda else None,
        "libcuda_realpath": libcuda.realpath if libcuda else None,
        "libcuda_origin": libcuda.origin if libcuda else None,
        "probe": "ran" if facts.probe.ran else "skipped",
        "probe_error": facts.probe.error,
    }
    return Diagnosis(findings=tuple(findings), driver=info)


def _visibility(facts: Facts, gpu_seen: bool) -> list[Finding]:
    out: list[Finding] = []
    nvd = facts.env.get("NVIDIA_VISIBLE_DEVICES")
    cvd = facts.env.get("CUDA_VISIBLE_DEVICES")
    env_line = f"NVIDIA_VISIBLE_DEVICES={nvd!r}, CUDA_VISIBLE_DEVICES={cvd!r}"
    if nvd is not None and nvd.strip().lower() in ("void", "none", ""):
        out.append(
            Finding(
                code="NO_GPU_VISIBLE",
                severity="error",
                message=f"NVIDIA_VISIBLE_DEVICES={nvd!r} asks the container runtime to expose no GPU",
                evidence=(env_line,),
                fix="Request a GPU: pod spec `resources: {limits: {nvidia.com/gpu: 1}}`, or `docker run --gpus all`; "
                "do not set NVIDIA_VISIBLE_DEVICES=void/none in the image.",
            )
        )
        return out
    if cvd is not None and cvd.strip() in ("", "-1", "none", "NoDevFiles"):
        out.append(
            Finding(
                code="NO_GPU_VISIBLE",
                severity="error",
                message=f"CUDA_VISIBLE_DEVICES={cvd!r} hides every GPU from CUDA applications",
                evidence=(env_line,),
                fix="Unset CUDA_VISIBLE_DEVICES (or set it to the GPU indices you want, e.g. `0`).",
            )
        )
    nvml_count = len(facts.probe.gpus)
    if not gpu_seen:
        out.append(
            Finding(
                code="NO_GPU_VISIBLE",
                severity="error",
                message="no NVIDIA GPU is visible: no kernel module, no /dev/nvidia<N>, no GPU through NVML",
                evidence=(
                    "/proc/driver/nvidia/version: absent",
                    f"device nodes: {', '.join(facts.device_nodes) or 'none'}",
                    f"NVML: {facts.probe.nvml_error or ('not loadable' if facts.nvml is None or facts.nvml.path is None else 'no GPU')}",
                    env_line,
                ),
                fix="Run on a GPU node and request a GPU: pod spec `resources: {limits: {nvidia.com/gpu: 1}}` "
                "(or `docker run --gpus all` with the NVIDIA container toolkit).",
            )
        )
        return out
    if facts.probe.ran and facts.probe.nvml_driver and nvml_count == 0:
        out.append(
            Finding(
                code="NO_GPU_VISIBLE",
                severity="error",
                message="NVML initialised but reports 0 GPUs",
                evidence=(f"NVML driver {facts.probe.nvml_driver}", env_line),
                fix="Request a GPU in the pod spec (`nvidia.com/gpu: 1`) and check NVIDIA_VISIBLE_DEVICES.",
            )
        )
    expected = max(nvml_count, facts.proc_gpus, 1)
    wanted = ["/dev/nvidiactl", "/dev/nvidia-uvm", *[f"/dev/nvidia{i}" for i in range(expected)]]
    present = set(facts.device_nodes)
    missing = [n for n in wanted if n not in present]
    if missing:
        out.append(
            Finding(
                code="DEVICE_NODES_MISSING",
                severity="error",
                message=f"device node(s) {', '.join(missing)} missing although the driver sees {expected} GPU(s)",
                evidence=(
                    f"present: {', '.join(facts.device_nodes) or 'none'}",
                    f"kernel module: {facts.kernel_module or 'unknown'}; GPUs (NVML/proc): {nvml_count}/{facts.proc_gpus}",
                ),
                fix="Restart the pod (a systemd daemon-reload drops device rules); on the node run "
                "`nvidia-ctk system create-dev-char-symlinks --create-all` or switch to CDI; "
                "`nvidia-modprobe -u -c=0` loads nvidia_uvm.",
            )
        )
    return out


def _libcuda(facts: Facts, gpu_seen: bool) -> list[Finding]:
    out: list[Finding] = []
    edge = facts.libcuda
    caps = facts.env.get("NVIDIA_DRIVER_CAPABILITIES")
    drivers = [x for x in facts.family("cuda") if x.origin in ("driver", "dpkg", "compat", "unknown")]
    nvml_driver = [x for x in facts.family("nvidia-ml") if x.origin in ("driver", "unknown", "dpkg")]
    resolved = facts.resolved("cuda")
    if resolved is not None and (resolved.origin == "stub" or facts.probe.cu_init == CUDA_STUB_LIBRARY):
        real = [x for x in drivers if x.realpath != resolved.realpath]
        evidence = [f"libcuda.so.1 => {_where(resolved)} via {resolved.via}"]
        if facts.probe.cu_init is not None:
            evidence.append(
                f"cuInit(0) = {facts.probe.cu_init}"
                + (" (CUDA_ERROR_STUB_LIBRARY)" if facts.probe.cu_init == 34 else "")
            )
        if real:
            evidence.append(f"shadowed real driver: {real[0].path}")
        stub_dir = resolved.path.rsplit("/", 1)[0]
        out.append(
            Finding(
                code="LIBCUDA_STUB",
                severity="error",
                message=f"the loader picks the CUDA toolkit's link-time stub {resolved.path}: every driver call "
                "fails with 'CUDA driver is a stub library' (34)",
                evidence=tuple(evidence),
                fix=f"Remove {stub_dir} from LD_LIBRARY_PATH and /etc/ld.so.conf.d (e.g. `RUN rm -f "
                "/etc/ld.so.conf.d/z-cuda-stubs.conf && ldconfig`); use stubs only at link time via `-L.../stubs`.",
            )
        )
    if edge is None or edge.path is not None:
        return out
    runtime_present = bool(facts.family("cudart")) or any(f.cuda for f in facts.frameworks)
    if not nvml_driver or drivers:
        if not (gpu_seen or drivers) or not (runtime_present or gpu_seen):
            return out
        hint = [x for x in drivers if x.origin != "stub"]
        evidence = [
            f"dlopen('libcuda.so.1') from {edge.needed_by or 'the executable'} searched: "
            + (", ".join(edge.searched) or "nothing"),
            "ld.so.cache: no entry for libcuda.so.1",
            f"LD_LIBRARY_PATH={facts.env.get('LD_LIBRARY_PATH')!r}",
        ]
        if hint:
            evidence.append(f"a driver library exists at {hint[0].realpath} (not on the search path)")
        directory = hint[0].path.rsplit("/", 1)[0] if hint else "/usr/local/nvidia/lib64"
        out.append(
            Finding(
                code="LIBCUDA_NOT_FOUND",
                severity="error",
                message="libcuda.so.1 is not on the loader's search path: CUDA reports 'Found no NVIDIA driver' (35)",
                evidence=tuple(evidence),
                fix=f"ENV LD_LIBRARY_PATH={directory}:${{LD_LIBRARY_PATH}}  (or in an entrypoint: "
                f"`echo {directory} > /etc/ld.so.conf.d/nvidia.conf && ldconfig`; or base the image on nvidia/cuda:*-base)",
            )
        )
        return out
    out.append(
        Finding(
            code="DRIVER_CAPABILITIES",
            severity="error",
            message="the driver's NVML library is mounted but no libcuda is: the container was started without "
            "the 'compute' driver capability",
            evidence=(
                f"libnvidia-ml: {nvml_driver[0].path}",
                "libcuda.so.*: none found in search paths or known driver directories",
                f"NVIDIA_DRIVER_CAPABILITIES={caps!r}",
            ),
            fix="ENV NVIDIA_DRIVER_CAPABILITIES=compute,utility  (in the Dockerfile, or the pod's env)",
        )
    )
    return out


def _driver_vs_runtime(facts: Facts, driver: str | None) -> list[Finding]:
    out: list[Finding] = []
    runtime = _runtime(facts)
    libcuda = facts.resolved("cuda")
    if facts.probe.cu_init == COMPAT_NOT_SUPPORTED_ON_DEVICE:
        out.append(
            Finding(
                code="FORWARD_COMPAT_UNSUPPORTED",
                severity="error",
                message="cuInit returned 804: forward compatibility was attempted on non supported HW",
                evidence=(
                    f"libcuda.so.1 => {_where(libcuda)}" if libcuda else "libcuda: ?",
                    f"kernel module {driver}",
                ),
                fix="Remove the compat directory from LD_LIBRARY_PATH / /etc/ld.so.conf.d, or use an image whose CUDA "
                "is <= the driver's CUDA, or upgrade the node driver.",
            )
        )
    if runtime is None or driver is None:
        return out
    cuda = _v(runtime.version)
    drv = _v(driver)
    if cuda is None or drv is None:
        return out
    from imagesmith.matrix import rules

    kb = _kb()
    gpu = None
    for g in facts.probe.gpus:
        gpu = match_gpu(kb, g.name)
        if gpu is not None:
            break
    compat = None
    if libcuda is not None and libcuda.origin == "compat" and libcuda.version:
        compat_drv = _v(libcuda.version)
        compat = kb.driver_max_cuda(compat_drv) if compat_drv else None
        if compat is None and facts.probe.cu_driver_version:
            compat = _v(_cuda_from_int(facts.probe.cu_driver_version))
    try:
        verdict = rules.runtime_on_driver(kb, cuda=cuda, driver=drv, gpu=gpu, compat_cuda=compat)
    except Exception as exc:  # an unknown compat package or driver branch must not crash the doctor
        return [*out, _note("DRIVER_TOO_OLD", f"could not evaluate CUDA {cuda} on driver {driver}: {exc}")]
    evidence = (
        f"libcudart {runtime.version} at {_where(runtime)}",
        f"driver {driver} (kernel module {facts.kernel_module or '?'}; cuDriverGetVersion "
        f"{_cuda_from_int(facts.probe.cu_driver_version) or '?'})",
        *(f"libcuda.so.1 => {_where(libcuda)}" for _ in [0] if libcuda is not None),
    )
    out += _from_verdict(verdict, evidence, runtime, driver)
    return out


def _note(code: str, message: str) -> Finding:
    return Finding(code=code, severity="warning", message=message, evidence=(), fix="Report this as a bug.")


def _from_verdict(
    verdict: Verdict, evidence: tuple[str, ...], runtime: Library, driver: str
) -> list[Finding]:
    out: list[Finding] = []
    codes = {r.code: r for r in verdict.reasons}
    if "FORWARD_COMPAT_UNSUPPORTED_GPU" in codes or "FORWARD_COMPAT_UNSUPPORTED_BRANCH" in codes:
        reason = codes.get("FORWARD_COMPAT_UNSUPPORTED_GPU") or codes["FORWARD_COMPAT_UNSUPPORTED_BRANCH"]
        out.append(
            Finding(
                code="FORWARD_COMPAT_UNSUPPORTED",
                severity="error",
                message=reason.message,
                evidence=evidence,
                fix="Remove /usr/local/cuda/compat from LD_LIBRARY_PATH and /etc/ld.so.conf.d (00-compat-*.conf), "
                f"use a build for the driver's CUDA, or upgrade the node driver (now {driver}).",
            )
        )
    if "FORWARD_COMPAT_NOT_NEEDED" in codes:
        out.append(
            Finding(
                code="DRIVER_LIBRARY_MISMATCH",
                severity="warning",
                message=codes["FORWARD_COMPAT_NOT_NEEDED"].message,
                evidence=evidence,
                fix="Drop the compat directory from the loader path (unset LD_LIBRARY_PATH=/usr/local/cuda/compat).",
            )
        )
    if "DRIVER_TOO_OLD" in codes:
        parsed = _v(runtime.version)
        major = str(parsed.major) if parsed else "?"
        out.append(
            Finding(
                code="DRIVER_TOO_OLD",
                severity="error",
                message=codes["DRIVER_TOO_OLD"].message,
                evidence=evidence,
                fix=f"Install a framework build for the driver's CUDA (e.g. `pip install torch --index-url "
                f"https://download.pytorch.org/whl/cu126`), upgrade the node driver for CUDA {major}, or on data-center "
                "GPUs add cuda-compat.",
            )
        )
    if "MINOR_VERSION_COMPATIBLE" in codes:
        jit = codes.get("PTX_JIT_CAVEAT")
        out.append(
            Finding(
                code="DRIVER_TOO_OLD",
                severity="warning",
                message="works under minor-version compatibility: "
                + codes["MINOR_VERSION_COMPATIBLE"].message,
                evidence=evidence + ((jit.message,) if jit else ()),
                fix="Fine for most workloads; for PTX JIT (torch.compile/Triton/NVRTC) upgrade the node driver or "
                "use a build for the driver's CUDA minor.",
            )
        )
    return out


def _mismatch(facts: Facts) -> list[Finding]:
    out: list[Finding] = []
    kernel = facts.kernel_module
    if facts.probe.nvml_error and "mismatch" in facts.probe.nvml_error.lower():
        nvml = facts.resolved("nvidia-ml")
        out.append(
            Finding(
                code="DRIVER_LIBRARY_MISMATCH",
                severity="error",
                message=f"NVML: {facts.probe.nvml_error}",
                evidence=(
                    f"libnvidia-ml.so.1 => {_where(nvml)}" if nvml else "libnvidia-ml: ?",
                    f"kernel module {kernel}",
                ),
                fix="Remove driver packages/libraries baked into the image (libnvidia-compute-*, nvidia-driver-*) so the "
                "host driver mount is used; on a host, reboot after a driver upgrade.",
            )
        )
    if facts.probe.cu_init == SYSTEM_DRIVER_MISMATCH and not out:
        out.append(
            Finding(
                code="DRIVER_LIBRARY_MISMATCH",
                severity="error",
                message="cuInit returned 803: system has unsupported display driver / cuda driver combination",
                evidence=(f"kernel module {kernel}",),
                fix="Use the libcuda from the host driver mount; remove baked-in or stale compat driver libraries.",
            )
        )
    if kernel is None:
        return out
    kv = _v(kernel)
    for family, soname in (("cuda", "libcuda.so.1"), ("nvidia-ml", "libnvidia-ml.so.1")):
        lib = facts.resolved(family)
        if lib is None or not lib.version or lib.origin == "stub":
            continue
        lv = _v(lib.version)
        if lv is None or lv == kv:
            continue
        if lib.origin == "compat" and kv is not None and lv > kv:
            continue  # a newer compat copy is forward compatibility, judged by the matrix rules
        baked = f" (baked into the image by {lib.dist})" if lib.origin == "dpkg" and lib.dist else ""
        if any(f.code == "DRIVER_LIBRARY_MISMATCH" and lib.path in " ".join(f.evidence) for f in out):
            continue
        out.append(
            Finding(
                code="DRIVER_LIBRARY_MISMATCH",
                severity="error",
                message=f"{soname} is user-mode driver {lib.version} but the kernel module is {kernel}{baked}: "
                + (
                    "'system has unsupported display driver / cuda driver combination' (803)"
                    if family == "cuda"
                    else "'Failed to initialize NVML: Driver/library version mismatch'"
                ),
                evidence=(
                    f"{soname} => {_where(lib)} via {lib.via}",
                    f"/proc/driver/nvidia/version: {kernel}",
                    f"cuDriverGetVersion: {_cuda_from_int(facts.probe.cu_driver_version) or '?'}",
                    f"NVML driver: {facts.probe.nvml_driver or facts.probe.nvml_error or '?'}",
                ),
                fix=(
                    "Do not install driver packages in the image (`apt-get purge 'libnvidia-*' 'nvidia-driver-*'`); "
                    "let the NVIDIA container toolkit mount the host's libraries"
                    if lib.origin == "dpkg"
                    else f"Remove {lib.path.rsplit('/', 1)[0]} from LD_LIBRARY_PATH / ld.so.conf.d so the host driver "
                    "mount wins; on a host, reboot after upgrading the driver."
                ),
            )
        )
    return out


def _kernels(facts: Facts) -> list[Finding]:
    out: list[Finding] = []
    caps = [(g, _cap(g.capability)) for g in facts.probe.gpus if g.capability]
    if not caps:
        return out
    from imagesmith.matrix import rules
    from imagesmith.matrix.versions import NvVersion

    for fw in facts.frameworks:
        if not (fw.sass or fw.ptx):
            continue
        sass = tuple(NvVersion.capability(s) for s in fw.sass)
        ptx = tuple(NvVersion.capability(p) for p in fw.ptx)
        for gpu, cap in caps:
            if cap is None:
                continue
            verdict = rules.kernel_for_gpu(sass=sass, ptx=ptx, capability=cap)
            for reason in verdict.reasons:
                if reason.code not in ("NO_KERNEL_IMAGE", "PTX_JIT_CAVEAT"):
                    continue
                out.append(
                    Finding(
                        code="NO_KERNEL_IMAGE",
                        severity="error" if reason.severity == "fail" else "warning",
                        message=f"{fw.name} {fw.version} on GPU {gpu.index} {gpu.name} ({cap.sm}): {reason.message}",
                        evidence=(
                            f"compiled SASS: {', '.join('sm_' + s.replace('.', '') for s in fw.sass) or 'none'}; "
                            f"PTX: {', '.join('compute_' + p.replace('.', '') for p in fw.ptx) or 'none'}",
                            f"read from the .nv_fatbin of {fw.arch_source}",
                            f"GPU {gpu.index}: {gpu.name}, compute capability {gpu.capability} (NVML)",
                        ),
                        fix=f"Install a {fw.name} build whose arch list includes {cap.sm} (e.g. a newer CUDA flavour: "
                        "sm_100/sm_120 need cu128+).",
                    )
                )
    return out


def _cap(text: str | None) -> NvVersion | None:
    from imagesmith.matrix.versions import NvVersion

    try:
        return NvVersion.capability(text) if text else None
    except ValueError:
        return None


def _shadowed(facts: Facts) -> list[Finding]:
    out: list[Finding] = []
    by_path = {lib.path: lib for lib in facts.libraries}
    empty = [i for i, e in enumerate(facts.ld_library_path) if e == ""]
    for lib in facts.libraries:
        if not lib.loaded or lib.family in ("cuda", "nvidia-ml") or lib.via in ("direct", "already_loaded"):
            continue
        others = [by_path[p] for p in lib.shadowed if p in by_path]
        others += [
            x
            for x in facts.libraries
            if x.name == lib.name and x.realpath != lib.realpath and x not in others and x.origin != "stub"
        ]
        different = [x for x in others if (x.version, x.origin) != (lib.version, lib.origin)]
        if not different:
            continue
        evidence = [f"{lib.name} => {_where(lib)} via {lib.via} (needed by {lib.needed_by})"]
        evidence += [f"shadowed: {_where(x)}" for x in different]
        if empty:
            evidence.append("LD_LIBRARY_PATH has an empty element: the current directory is searched too")
        intended = next((x for x in different if x.origin == "wheel"), different[0])
        out.append(
            Finding(
                code="LIBRARY_SHADOWED",
                severity="warning",
                message=f"{lib.name} resolves to {lib.path} ({lib.origin} {lib.version or '?'}) via {lib.via}; "
                f"{intended.path} ({intended.origin} {intended.version or '?'}) is shadowed",
                evidence=tuple(evidence),
                fix=(
                    f"Remove {lib.path.rsplit('/', 1)[0]} from LD_LIBRARY_PATH (ENV LD_LIBRARY_PATH=...), or put "
                    f"{intended.path.rsplit('/', 1)[0]} first."
                    if lib.via == "ld_library_path"
                    else f"Put {intended.path.rsplit('/', 1)[0]} first on LD_LIBRARY_PATH, or remove the other copy."
                ),
            )
        )
    return out


def _cudnn(facts: Facts) -> list[Finding]:
    out: list[Finding] = []
    lib = next(
        (x for x in facts.libraries if x.family == "cudnn" and x.loaded and x.name.startswith("libcudnn.so")),
        None,
    )
    if lib is None or not lib.version:
        return out
    have = _v(lib.version)
    for fw in facts.frameworks:
        pin = next((v for k, v in fw.pins.items() if k.startswith("nvidia-cudnn")), None)
        want = _v(pin)
        if want is None or have is None:
            continue
        if have.major != want.major or have.truncate(2) < want.truncate(2):
            out.append(
                Finding(
                    code="CUDNN_MISMATCH",
                    severity="error",
                    message=f"{fw.name} {fw.version} was built against cuDNN {pin} but the loader picks cuDNN "
                    f"{lib.version}: cuDNN needs the same major and an equal or higher minor",
                    evidence=(
                        f"libcudnn => {_where(lib)} via {lib.via}",
                        f"{fw.name} METADATA pins nvidia-cudnn=={pin}",
                    ),
                    fix=f"Remove {lib.path.rsplit('/', 1)[0]} from LD_LIBRARY_PATH, or `pip install "
                    f"nvidia-cudnn-cu{want.major if want.major > 9 else 12}=={pin}`.",
                )
            )
    return out


def _glibc(facts: Facts) -> list[Finding]:
    have, need = _v(facts.glibc_version), _v(facts.glibc_required)
    if have is None or need is None or need <= have:
        return []
    return [
        Finding(
            code="GLIBC_TOO_OLD",
            severity="error",
            message=f"{facts.glibc_required_by} needs GLIBC_{facts.glibc_required} but this image's glibc is "
            f"{facts.glibc_version}: \"version 'GLIBC_{facts.glibc_required}' not found\"",
            evidence=(
                f"max GLIBC_ version needed in the resolved tree: {facts.glibc_required}",
                f"glibc: {facts.glibc_version}",
            ),
            fix=f"Use a base image with glibc >= {facts.glibc_required} (e.g. FROM debian:12-slim / ubuntu:22.04), "
            "or a wheel with an older manylinux tag.",
        )
    ]


def _mixed(facts: Facts) -> list[Finding]:
    loaded = [x for x in facts.libraries if x.loaded and x.family in RUNTIME_FAMILIES]
    origins = {x.origin for x in loaded if x.origin in ("wheel", "conda", "dpkg")}
    # Only these libraries number their versions after the CUDA release; cuFFT, cuSPARSE, cuSOLVER and
    # cuRAND keep their own (CUDA 13.0 ships cuFFT 12.0 and cuSPARSE 12.6), so their major says nothing.
    majors = {
        x.family: str(v.major)
        for x in loaded
        if x.family in ("cudart", "cublas", "nvjitlink", "nvrtc") and (v := _v(x.version)) is not None
    }
    cuda_majors = {m for m in majors.values() if m in ("11", "12", "13")}
    if len(origins) <= 1 and len(cuda_majors) <= 1:
        return []
    return [
        Finding(
            code="MIXED_CUDA_ORIGINS",
            severity="warning",
            message=f"the loaded CUDA libraries come from {len(origins)} origins ({', '.join(sorted(origins))})"
            + (f" and CUDA majors {', '.join(sorted(cuda_majors))}" if len(cuda_majors) > 1 else ""),
            evidence=tuple(f"{x.name} => {_where(x)}" for x in loaded),
            fix="Use one CUDA stack: either pip's nvidia-* wheels (remove conda's/the toolkit's lib dir from "
            "LD_LIBRARY_PATH, `conda uninstall cuda-toolkit`) or the system toolkit.",
        )
    ]


# -- --image ---------------------------------------------------------------------------------------------
def check_image(facts: Facts, image: dict[str, object]) -> Diagnosis:
    """Will an image (its io.imagesmith.* labels and ENV) run on this node's driver and GPUs?"""
    from imagesmith.contract import labels as contract
    from imagesmith.contract.sm import ptx_of, sass_of
    from imagesmith.matrix import rules
    from imagesmith.matrix.versions import NvVersion

    labels = image.get("labels") or {}
    assert isinstance(labels, dict)
    promised = contract.ImageLabels.from_labels(labels)
    env = image.get("env") or {}
    assert isinstance(env, dict)
    ref = str(image.get("ref"))
    findings: list[Finding] = []
    driver = driver_version(facts)
    cuda_text = promised.cuda
    if not cuda_text:
        m = re.search(r"cuda>=(\d+\.\d+)", str(env.get("NVIDIA_REQUIRE_CUDA", "")))
        cuda_text = m.group(1) if m else None
    subject: dict[str, object] = {
        "image": ref,
        "labels": contract.ours(labels),
    }
    if driver is None:
        findings.append(
            Finding(
                code="NO_GPU_VISIBLE",
                severity="error",
                message="this node shows no NVIDIA driver, so the image's CUDA cannot run here",
                evidence=(
                    "/proc/driver/nvidia/version: absent",
                    f"NVML: {facts.probe.nvml_error or 'not loadable'}",
                ),
                fix="Run the check on a GPU node (or in a pod with `nvidia.com/gpu: 1`).",
            )
        )
        return Diagnosis(findings=tuple(findings), subject=subject, driver={"version": None})
    drv = _v(driver)
    assert drv is not None
    evidence = (f"image {ref}: {contract.CUDA}={cuda_text}", f"node driver {driver}")
    min_driver = _v(promised.min_driver) if promised.min_driver else None
    kb = _kb()
    gpu = next((g for g in (match_gpu(kb, x.name) for x in facts.probe.gpus) if g is not None), None)
    cuda = _v(str(cuda_text)) if cuda_text else None
    if cuda is not None:
        verdict = rules.runtime_on_driver(kb, cuda=cuda, driver=drv, gpu=gpu)
        fake = Library(
            name="libcudart", path=ref, realpath=ref, family="cudart", version=str(cuda), origin="image"
        )
        findings += _from_verdict(verdict, evidence, fake, driver)
    if min_driver is not None and drv < min_driver and not any(f.code == "DRIVER_TOO_OLD" for f in findings):
        findings.append(
            Finding(
                code="DRIVER_TOO_OLD",
                severity="error",
                message=f"the image declares {contract.MIN_DRIVER}={min_driver}; this node's driver is {driver}",
                evidence=evidence,
                fix=f"Upgrade the node driver to >= {min_driver}, or pick an image built for an older CUDA.",
            )
        )
    sm_text = ",".join(promised.sm)
    sass: list[NvVersion] = []
    ptx: list[NvVersion] = []
    for bucket, tokens in ((sass, sass_of(promised.sm)), (ptx, ptx_of(promised.sm))):
        for token in tokens:
            try:
                bucket.append(NvVersion.capability(token))
            except ValueError:
                continue
    if sass or ptx:
        for g in facts.probe.gpus:
            gpu_cap = _cap(g.capability)
            if gpu_cap is None:
                continue
            verdict = rules.kernel_for_gpu(sass=tuple(sass), ptx=tuple(ptx), capability=gpu_cap)
            for reason in verdict.reasons:
                if reason.code in ("NO_KERNEL_IMAGE", "PTX_JIT_CAVEAT"):
                    findings.append(
                        Finding(
                            code="NO_KERNEL_IMAGE",
                            severity="error" if reason.severity == "fail" else "warning",
                            message=f"GPU {g.index} {g.name} ({gpu_cap.sm}): {reason.message}",
                            evidence=(
                                f"{contract.SM}={sm_text}",
                                f"GPU {g.index} capability {g.capability}",
                            ),
                            fix=f"Use an image whose {contract.SM} covers {gpu_cap.sm}.",
                        )
                    )
    return Diagnosis(findings=tuple(findings), subject=subject, driver={"version": driver})
