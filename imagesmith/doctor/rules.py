"""Pure rules: the facts collected in a pod and the compatibility knowledge -> findings, each with a code
from the one vocabulary (``imagesmith.matrix.codes``), evidence and a concrete fix.

Verdicts about drivers, runtimes, GPUs, kernels and cuDNN are the matrix's (``imagesmith.matrix.rules``);
this module decides which facts to feed them and says what the loader and the driver did. Nothing here
reads a file or the environment: ``diagnose(facts, kb)`` is a function of its arguments.
"""

from __future__ import annotations

from imagesmith.doctor.facts import Facts, Library
from imagesmith.doctor.findings import Diagnosis, Finding, ordered, text
from imagesmith.matrix import rules as matrix_rules
from imagesmith.matrix.codes import Code

TYPE_CHECKING = False  # mypy treats this name as True
if TYPE_CHECKING:
    from imagesmith.matrix.knowledge import Knowledge
    from imagesmith.matrix.model import Gpu
    from imagesmith.matrix.rules import Verdict
    from imagesmith.matrix.versions import NvVersion

# CUDA-family libraries a process loads (the driver's own are judged by version, not by copy).
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
DRIVER_FAMILIES = ("cuda", "nvidia-ml", "nvidia-ptxjitcompiler", "nvidia-nvvm")
# Only these number their versions after the CUDA release (CUDA 13.0 ships cuFFT 12.0, cuSPARSE 12.6).
CUDA_NUMBERED = ("cudart", "cublas", "nvjitlink", "nvrtc")
CUDA_STUB_LIBRARY = 34
SYSTEM_DRIVER_MISMATCH = 803
COMPAT_NOT_SUPPORTED_ON_DEVICE = 804


# -- helpers -------------------------------------------------------------------------------------------
def _cuda_from_int(value: int | None) -> str | None:
    if not value:
        return None
    return f"{value // 1000}.{(value % 1000) // 10}"


def _dir(path: str) -> str:
    return path.rsplit("/", 1)[0] or "/"


def match_gpu(kb: Knowledge, name: str) -> Gpu | None:
    """The knowledge's GPU for an NVML name ('NVIDIA H100 80GB HBM3'): its aliases hold the names
    nvidia-smi prints; a name not there is tried without its suffixes ('NVIDIA L4 (something)' -> L4)."""
    gpu = kb.gpu_or_none(name)
    if gpu is not None:
        return gpu
    tokens = name.replace("-", " ").split()
    for n in range(len(tokens) - 1, 0, -1):
        gpu = kb.gpu_or_none(" ".join(tokens[:n]))
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


def _driver_nv(facts: Facts) -> NvVersion | None:
    from imagesmith.matrix.versions import NvVersion

    if facts.kernel_nv is not None:
        return facts.kernel_nv
    return NvVersion.leading(driver_version(facts))


def _gpu_evidence(facts: Facts) -> bool:
    return bool(
        facts.kernel_module
        or facts.proc_gpus
        or facts.probe.gpus
        or any(n.startswith("/dev/nvidia") and n[len("/dev/nvidia") :].isdigit() for n in facts.device_nodes)
    )


def _where(lib: Library) -> str:
    dist = f", {lib.dist}" if lib.dist else ""
    ver = f" {lib.version}" if lib.version else ""
    return f"{lib.path} ({lib.origin}{ver}{dist})"


def _by_path(facts: Facts) -> dict[str, Library]:
    return {lib.path: lib for lib in facts.libraries}


def would_load(facts: Facts) -> dict[str, Library]:
    """soname -> the copy that would load: the one the modelled process (the framework) loads, else the
    one a plain dlopen by name picks. Driver libraries are left out."""
    out: dict[str, Library] = {}
    for lib in facts.libraries:
        if lib.loaded and lib.family not in DRIVER_FAMILIES:
            out.setdefault(lib.name, lib)
    paths = _by_path(facts)
    for pick in facts.picks:
        if pick.name not in out and pick.path is not None and pick.path in paths:
            out[pick.name] = paths[pick.path]
    return out


def runtime(facts: Facts) -> Library | None:
    """'The runtime': the libcudart that would actually load; else the one the wheels ship."""
    loading = [lib for name, lib in would_load(facts).items() if name.startswith("libcudart.so")]
    if loading:
        return max(loading, key=lambda lib: lib.nv.parts if lib.nv else ())
    shipped = [x for x in facts.family("cudart") if x.nv is not None and x.origin == "wheel"]
    return shipped[0] if shipped else None


def _gpu(facts: Facts, kb: Knowledge) -> Gpu | None:
    for g in facts.probe.gpus:
        gpu = match_gpu(kb, g.name)
        if gpu is not None:
            return gpu
    return None


# -- the diagnosis -------------------------------------------------------------------------------------
def diagnose(facts: Facts, kb: Knowledge) -> Diagnosis:
    findings: list[Finding] = []
    gpu_seen = _gpu_evidence(facts)
    findings += _visibility(facts, gpu_seen)
    findings += _nvml_unknown(facts)
    findings += _libcuda(facts, gpu_seen)
    findings += _driver_vs_runtime(facts, kb)
    findings += _driver_libraries(facts)
    findings += _kernels(facts)
    findings += _cpu_only(facts, gpu_seen)
    findings += _shadowed(facts)
    findings += _mixed(facts)
    findings += _cudnn(facts)
    findings += _glibc(facts)
    findings += _empty_element(facts)
    libcuda = facts.resolved("cuda")
    loads = runtime(facts)
    info: dict[str, object] = {
        "version": driver_version(facts),
        "kernel_module": facts.kernel_module,
        "nvml_driver": facts.probe.nvml_driver,
        "nvml_cuda": _cuda_from_int(facts.probe.nvml_cuda),
        "cuda_driver_version": _cuda_from_int(facts.probe.cu_driver_version),
        "cu_init": facts.probe.cu_init,
        "libcuda": libcuda.path if libcuda else None,
        "libcuda_realpath": libcuda.realpath if libcuda else None,
        "libcuda_origin": libcuda.origin if libcuda else None,
        "runtime": loads.path if loads else None,
        "runtime_version": loads.version if loads else None,
        "runtime_origin": loads.origin if loads else None,
        "probe": "ran" if facts.probe.ran else "skipped",
        "probe_error": facts.probe.error,
    }
    return Diagnosis(findings=ordered(findings), driver=info)


def _env_line(facts: Facts) -> str:
    nvd = facts.env.get("NVIDIA_VISIBLE_DEVICES")
    cvd = facts.env.get("CUDA_VISIBLE_DEVICES")
    return f"NVIDIA_VISIBLE_DEVICES={text(nvd)}, CUDA_VISIBLE_DEVICES={text(cvd)}"


def _visibility(facts: Facts, gpu_seen: bool) -> list[Finding]:
    out: list[Finding] = []
    nvd = facts.env.get("NVIDIA_VISIBLE_DEVICES")
    cvd = facts.env.get("CUDA_VISIBLE_DEVICES")
    env_line = _env_line(facts)
    if nvd is not None and nvd.strip().lower() in ("void", "none", ""):
        out.append(
            Finding(
                code=Code.NO_GPU_VISIBLE,
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
                code=Code.NO_GPU_VISIBLE,
                severity="error",
                message=f"CUDA_VISIBLE_DEVICES={cvd!r} hides every GPU from CUDA applications",
                evidence=(env_line,),
                fix="Unset CUDA_VISIBLE_DEVICES (or set it to the GPU indices you want, e.g. `0`).",
            )
        )
    nvml_count = len(facts.probe.gpus)
    if not gpu_seen:
        nvml = facts.probe.nvml_error or (
            "not loadable" if facts.nvml is None or facts.nvml.path is None else "no GPU"
        )
        out.append(
            Finding(
                code=Code.NO_GPU_VISIBLE,
                severity="error",
                message="no NVIDIA GPU is visible: no kernel module, no /dev/nvidia<N>, no GPU through NVML",
                evidence=(
                    "/proc/driver/nvidia/version: absent",
                    f"device nodes: {', '.join(facts.device_nodes) or 'none'}",
                    f"NVML: {nvml}",
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
                code=Code.NO_GPU_VISIBLE,
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
                code=Code.DEVICE_NODES_MISSING,
                severity="error",
                message=f"device node(s) {', '.join(missing)} missing although the driver sees {expected} GPU(s)",
                evidence=(
                    f"present: {', '.join(facts.device_nodes) or 'none'}",
                    f"kernel module: {text(facts.kernel_module)}; GPUs (NVML/proc): {nvml_count}/{facts.proc_gpus}",
                ),
                fix="Restart the pod (a systemd daemon-reload drops device rules); on the node run "
                "`nvidia-ctk system create-dev-char-symlinks --create-all` or switch to CDI; "
                "`nvidia-modprobe -u -c=0` loads nvidia_uvm.",
            )
        )
    return out


def _nvml_unknown(facts: Facts) -> list[Finding]:
    """'Failed to initialize NVML: Unknown Error' with the device nodes there: the container's device
    cgroup rules were dropped (systemd re-applied the unit's cgroup on a daemon-reload), so the nodes
    exist but cannot be opened."""
    nvml_error = facts.probe.nvml_error or ""
    unknown = "unknown error" in nvml_error.lower()
    nodes = [n for n in facts.device_nodes if n == "/dev/nvidiactl" or n[len("/dev/nvidia") :].isdigit()]
    if not (unknown and nodes) and not facts.device_errors:
        return []
    evidence = [f"NVML: {nvml_error}" if nvml_error else "NVML: not initialised"]
    evidence.append(f"device nodes present: {', '.join(nodes) or 'none'}")
    evidence += list(facts.device_errors)
    return [
        Finding(
            code=Code.NVML_UNKNOWN_ERROR,
            severity="error",
            message="'Failed to initialize NVML: Unknown Error': the GPU device nodes are there but this container "
            "may not use them (its device cgroup rules were lost, typically after `systemctl daemon-reload` on the node)",
            evidence=tuple(evidence),
            fix="Restart the pod to get the device rules back. On the node, stop it recurring: "
            "`nvidia-ctk system create-dev-char-symlinks --create-all` (with its udev rule), or run GPU containers "
            "through CDI (NVIDIA Container Toolkit >= 1.14), or pass the /dev/nvidia* nodes explicitly (`--device`).",
        )
    ]


def _libcuda(facts: Facts, gpu_seen: bool) -> list[Finding]:
    out: list[Finding] = []
    edge = facts.libcuda
    caps = facts.env.get("NVIDIA_DRIVER_CAPABILITIES")
    drivers = [x for x in facts.family("cuda") if x.origin in ("driver", "dpkg", "compat", "unknown")]
    nvml_driver = [x for x in facts.family("nvidia-ml") if x.origin in ("driver", "unknown", "dpkg")]
    resolved = facts.resolved("cuda")
    if resolved is not None and (resolved.origin == "stub" or facts.probe.cu_init == CUDA_STUB_LIBRARY):
        real = [x for x in drivers if x.realpath != resolved.realpath]
        evidence = [f"libcuda.so.1 => {_where(resolved)} via {text(resolved.via)}"]
        if facts.probe.cu_init is not None:
            evidence.append(
                f"cuInit(0) = {facts.probe.cu_init}"
                + (" (CUDA_ERROR_STUB_LIBRARY)" if facts.probe.cu_init == CUDA_STUB_LIBRARY else "")
            )
        if real:
            evidence.append(f"shadowed real driver: {real[0].path}")
        out.append(
            Finding(
                code=Code.LIBCUDA_STUB,
                severity="error",
                message=f"the loader picks the CUDA toolkit's link-time stub {resolved.path}: every driver call "
                "fails with 'CUDA driver is a stub library' (34)",
                evidence=tuple(evidence),
                fix=f"Remove {_dir(resolved.path)} from LD_LIBRARY_PATH and /etc/ld.so.conf.d (e.g. `RUN rm -f "
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
            f"LD_LIBRARY_PATH={text(facts.env.get('LD_LIBRARY_PATH'))}",
        ]
        if hint:
            evidence.append(f"a driver library exists at {hint[0].realpath} (not on the search path)")
        directory = _dir(hint[0].path) if hint else "/usr/local/nvidia/lib64"
        out.append(
            Finding(
                code=Code.LIBCUDA_NOT_FOUND,
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
            code=Code.DRIVER_CAPABILITIES,
            severity="error",
            message="the driver's NVML library is mounted but no libcuda is: the container was started without "
            "the 'compute' driver capability",
            evidence=(
                f"libnvidia-ml: {nvml_driver[0].path}",
                "libcuda.so.*: none found in search paths or known driver directories",
                f"NVIDIA_DRIVER_CAPABILITIES={text(caps)}",
            ),
            fix="ENV NVIDIA_DRIVER_CAPABILITIES=compute,utility  (in the Dockerfile, or the pod's env)",
        )
    )
    return out


def _driver_vs_runtime(facts: Facts, kb: Knowledge) -> list[Finding]:
    out: list[Finding] = []
    libcuda = facts.resolved("cuda")
    driver = driver_version(facts)
    if facts.probe.cu_init == COMPAT_NOT_SUPPORTED_ON_DEVICE:
        out.append(
            Finding(
                code=Code.FORWARD_COMPAT_UNSUPPORTED_GPU,
                severity="error",
                message="cuInit returned 804: forward compatibility was attempted on non supported HW",
                evidence=(
                    f"libcuda.so.1 => {_where(libcuda)}" if libcuda else "libcuda: not resolved",
                    f"kernel module {text(driver)}",
                ),
                fix="Remove the compat directory from LD_LIBRARY_PATH / /etc/ld.so.conf.d, or use an image whose CUDA "
                "is <= the driver's CUDA, or upgrade the node driver.",
            )
        )
    drv = _driver_nv(facts)
    gpu = _gpu(facts, kb)
    if gpu is not None and drv is not None:
        out += _from_verdict(
            matrix_rules.gpu_on_driver(kb, gpu=gpu, driver=drv),
            (f"GPU {gpu.name} (sm {gpu.capability}, {gpu.architecture})", f"driver {driver}"),
            cuda_major=None,
            driver=str(driver),
        )
    loads = runtime(facts)
    cuda = loads.nv if loads else None
    if loads is None or cuda is None or drv is None:
        return out
    compat = None
    if libcuda is not None and libcuda.origin == "compat" and libcuda.nv is not None:
        from imagesmith.matrix.versions import NvVersion

        compat = kb.driver_max_cuda(libcuda.nv)
        if compat is None and facts.probe.cu_driver_version:
            compat = NvVersion.leading(_cuda_from_int(facts.probe.cu_driver_version))
    try:
        verdict = matrix_rules.runtime_on_driver(kb, cuda=cuda, driver=drv, gpu=gpu, compat_cuda=compat)
    except Exception as exc:  # an unknown compat package or driver branch must not crash the doctor
        return [
            *out,
            Finding(
                code=Code.DRIVER_TOO_OLD,
                severity="warning",
                message=f"could not evaluate CUDA {cuda} on driver {driver}: {exc}",
                evidence=(),
                fix="Report this as a bug, with `imagesmith doctor --json`.",
            ),
        ]
    evidence = (
        f"the runtime that loads: libcudart {loads.version} at {_where(loads)}",
        f"driver {driver} (kernel module {text(facts.kernel_module)}; cuDriverGetVersion "
        f"{text(_cuda_from_int(facts.probe.cu_driver_version))})",
        *((f"libcuda.so.1 => {_where(libcuda)}",) if libcuda is not None else ()),
    )
    found = _from_verdict(verdict, evidence, cuda_major=cuda.major, driver=str(driver))
    if any(f.code == Code.FORWARD_COMPAT_UNSUPPORTED_GPU for f in out):
        found = [f for f in found if f.code != Code.FORWARD_COMPAT_UNSUPPORTED_GPU]
    return out + found


_FIXES = {
    Code.FORWARD_COMPAT_UNSUPPORTED_GPU: "Remove /usr/local/cuda/compat from LD_LIBRARY_PATH and /etc/ld.so.conf.d "
    "(00-compat-*.conf), use a build for the driver's CUDA, or upgrade the node driver (now {driver}).",
    Code.FORWARD_COMPAT_UNSUPPORTED_BRANCH: "Use a cuda-compat package NVIDIA supports on this branch, a build for "
    "the driver's CUDA, or upgrade the node driver (now {driver}).",
    Code.FORWARD_COMPAT_NOT_NEEDED: "Drop the compat directory from the loader path (LD_LIBRARY_PATH, "
    "/etc/ld.so.conf.d): the driver {driver} is already as new.",
    Code.DRIVER_TOO_OLD: "Install a framework build for the driver's CUDA (e.g. `pip install torch --index-url "
    "https://download.pytorch.org/whl/cu126`), upgrade the node driver for CUDA {major}, or on data-center GPUs "
    "add cuda-compat.",
    Code.MINOR_VERSION_COMPATIBLE: "Fine for most workloads; for PTX JIT (torch.compile/Triton/NVRTC) upgrade the "
    "node driver or use a build for the driver's CUDA minor.",
    Code.GPU_UNSUPPORTED_BY_DRIVER: "Run this GPU on a driver branch that supports it (see the message), or move "
    "the workload to a node pool whose driver does.",
}
_SEVERITY = {"fail": "error", "caveat": "warning", "info": "info"}


def _from_verdict(
    verdict: Verdict, evidence: tuple[str, ...], *, cuda_major: int | None, driver: str
) -> list[Finding]:
    """The matrix's reasons as findings: same code, same message; the doctor adds evidence and the fix.
    The PTX-JIT caveat of minor-version compatibility travels inside its finding."""
    out: list[Finding] = []
    reasons = {r.code: r for r in verdict.reasons}
    for reason in verdict.reasons:
        if reason.severity == "info" or reason.code not in _FIXES:
            continue
        extra: tuple[str, ...] = ()
        message = reason.message
        if reason.code == Code.MINOR_VERSION_COMPATIBLE:
            message = "works under minor-version compatibility: " + message
            jit = reasons.get(Code.PTX_JIT_CAVEAT)
            extra = (jit.message,) if jit else ()
        out.append(
            Finding(
                code=reason.code,
                severity=_SEVERITY[reason.severity],
                message=message,
                evidence=evidence + extra,
                fix=_FIXES[reason.code].format(driver=driver, major=text(cuda_major)),
            )
        )
    return out


def _driver_libraries(facts: Facts) -> list[Finding]:
    """The user-space driver libraries against each other and against the kernel module: after an
    unattended driver upgrade the running pod keeps the old libraries while the kernel runs the new
    module ('Driver/library version mismatch', CUDA 803)."""
    out: list[Finding] = []
    kernel = facts.kernel_module
    if facts.probe.nvml_error and "mismatch" in facts.probe.nvml_error.lower():
        nvml = facts.resolved("nvidia-ml")
        out.append(
            Finding(
                code=Code.DRIVER_LIBRARY_MISMATCH,
                severity="error",
                message=f"NVML: {facts.probe.nvml_error}",
                evidence=(
                    f"libnvidia-ml.so.1 => {_where(nvml)}" if nvml else "libnvidia-ml: not resolved",
                    f"kernel module {text(kernel)}",
                ),
                fix="Remove driver packages/libraries baked into the image (libnvidia-compute-*, nvidia-driver-*) so the "
                "host driver mount is used; after a driver upgrade on the node, restart the pod (or reboot the node "
                "if the host shows the mismatch too).",
            )
        )
    if facts.probe.cu_init == SYSTEM_DRIVER_MISMATCH and not out:
        out.append(
            Finding(
                code=Code.DRIVER_LIBRARY_MISMATCH,
                severity="error",
                message="cuInit returned 803: system has unsupported display driver / cuda driver combination",
                evidence=(f"kernel module {text(kernel)}",),
                fix="Use the libcuda from the host driver mount; remove baked-in or stale compat driver libraries; "
                "after a driver upgrade restart the pod.",
            )
        )
    libcuda = facts.resolved("cuda")
    # The driver set: what resolves (libcuda, NVML) plus the driver's other libraries beside libcuda.
    mount = _dir(libcuda.path) if libcuda is not None else None
    driver_libs = [
        lib
        for lib in facts.libraries
        if lib.family in DRIVER_FAMILIES
        and lib.origin not in ("stub", "compat")
        and lib.nv is not None
        and (lib.loaded or (mount is not None and _dir(lib.path) == mount))
    ]
    reported: set[str] = set()
    if facts.kernel_nv is not None:
        for lib in driver_libs:
            if lib.nv == facts.kernel_nv or lib.realpath in reported:
                continue
            reported.add(lib.realpath)
            out.append(_mismatch(facts, lib, f"the kernel module is {kernel}"))
    elif driver_libs:
        # No kernel module to compare with (its /proc file hidden): the libraries must agree among themselves.
        reference = next((x for x in driver_libs if x.family == "cuda"), driver_libs[0])
        for lib in driver_libs:
            if lib.nv != reference.nv and lib.realpath not in reported:
                reported.add(lib.realpath)
                out.append(
                    _mismatch(facts, lib, f"{reference.name} is {reference.version} ({reference.path})")
                )
    return out


def _mismatch(facts: Facts, lib: Library, other: str) -> Finding:
    baked = f" (baked into the image by {lib.dist})" if lib.origin == "dpkg" and lib.dist else ""
    effect = {
        "cuda": "'system has unsupported display driver / cuda driver combination' (803)",
        "nvidia-ml": "'Failed to initialize NVML: Driver/library version mismatch'",
    }.get(lib.family, "PTX JIT and NVVM calls fail")
    if lib.origin == "dpkg":
        fix = (
            "Do not install driver packages in the image (`apt-get purge 'libnvidia-*' 'nvidia-driver-*'`); "
            "let the NVIDIA container toolkit mount the host's libraries."
        )
    elif lib.origin == "driver":
        fix = (
            "The node's driver changed under this pod: restart the pod (the container toolkit / device plugin "
            "mounts the new libraries); if the node itself shows the mismatch, reboot it (or reload the nvidia "
            "kernel modules) so module and libraries are one version."
        )
    else:
        fix = (
            f"Remove {_dir(lib.path)} from LD_LIBRARY_PATH / ld.so.conf.d so the host driver mount wins; on a "
            "host, reboot after upgrading the driver."
        )
    return Finding(
        code=Code.DRIVER_LIBRARY_MISMATCH,
        severity="error",
        message=f"{lib.name} is user-mode driver {lib.version} but {other}{baked}: {effect}",
        evidence=(
            f"{lib.name} => {_where(lib)}" + (f" via {lib.via}" if lib.via else ""),
            f"/proc/driver/nvidia/version: {text(facts.kernel_module)}",
            f"cuDriverGetVersion: {text(_cuda_from_int(facts.probe.cu_driver_version))}",
            f"NVML driver: {text(facts.probe.nvml_driver or facts.probe.nvml_error)}",
        ),
        fix=fix,
    )


def _kernels(facts: Facts) -> list[Finding]:
    from imagesmith.matrix.versions import Capability

    out: list[Finding] = []
    gpus = [g for g in facts.probe.gpus if g.cc is not None]
    for fw in facts.frameworks:
        if not (fw.sass or fw.ptx):
            continue
        sass = tuple(Capability.parse(s) for s in fw.sass)
        ptx = tuple(Capability.parse(p) for p in fw.ptx)
        for gpu in gpus:
            assert gpu.cc is not None
            verdict = matrix_rules.kernel_for_gpu(sass=sass, ptx=ptx, capability=gpu.cc)
            for reason in verdict.reasons:
                if reason.code not in (Code.NO_KERNEL_IMAGE, Code.PTX_JIT_CAVEAT):
                    continue
                out.append(
                    Finding(
                        code=reason.code,
                        severity=_SEVERITY[reason.severity],
                        message=f"{fw.name} {fw.version} on GPU {gpu.index} {gpu.name} ({gpu.cc.sm}): {reason.message}",
                        evidence=(
                            f"compiled SASS: {', '.join(c.sm for c in sass) or 'none'}; "
                            f"PTX: {', '.join(f'compute_{c.major}{c.minor}' for c in ptx) or 'none'}",
                            f"read from the .nv_fatbin of {text(fw.arch_source)}",
                            f"GPU {gpu.index}: {gpu.name}, compute capability {gpu.capability} (NVML)",
                        ),
                        fix=f"Install a {fw.name} build whose arch list includes {gpu.cc.sm} (e.g. a newer CUDA "
                        "flavour: sm_100/sm_120 need cu128+).",
                    )
                )
    return out


_CPU_FIXES = {
    "torch": "Install a CUDA build: on Linux x86_64 plain `pip install torch` from PyPI is one (not "
    "`--index-url .../whl/cpu`), or a specific one with `--index-url https://download.pytorch.org/whl/cu126`; or "
    "build FROM a curated torch image.",
    "jax": 'Install the CUDA plugin that matches the driver: `pip install -U "jax[cuda12]"` (or `jax[cuda13]`).',
    "tensorflow": 'Replace it: `pip uninstall -y tensorflow-cpu && pip install "tensorflow[and-cuda]"`.',
}


def _cpu_only(facts: Facts, gpu_seen: bool) -> list[Finding]:
    if not gpu_seen:
        return []
    gpus = ", ".join(f"GPU {g.index} {g.name}" for g in facts.probe.gpus) or (
        f"kernel module {facts.kernel_module}" if facts.kernel_module else ", ".join(facts.device_nodes)
    )
    return [
        Finding(
            code=Code.CPU_ONLY_BUILD,
            severity="error",
            message=f"{fw.cpu_only}: on this GPU node it silently runs on the CPU",
            evidence=(f"{fw.name} {fw.version} at {fw.path}", f"GPUs visible: {gpus}"),
            fix=_CPU_FIXES.get(fw.name, "Install the framework's CUDA build."),
        )
        for fw in facts.frameworks
        if fw.cpu_only
    ]


def _shadowed(facts: Facts) -> list[Finding]:
    """A copy that would load which is not the one the nvidia-* wheels (or the framework) ship: grouped by
    the directory the wrong copies come from, with the exact LD_LIBRARY_PATH that fixes it."""
    loading = would_load(facts)
    wheel_copies: dict[str, list[Library]] = {}
    for lib in facts.libraries:
        if lib.origin == "wheel" and lib.family not in DRIVER_FAMILIES:
            wheel_copies.setdefault(lib.name, []).append(lib)
    groups: dict[str, list[tuple[Library, Library]]] = {}
    for name, intended_copies in sorted(wheel_copies.items()):
        got = loading.get(name)
        if got is None or any(got.realpath == w.realpath for w in intended_copies):
            continue
        groups.setdefault(_dir(got.path), []).append((got, intended_copies[0]))
    out: list[Finding] = []
    llp = list(facts.ld_library_path)
    for directory, pairs in groups.items():
        first = pairs[0][0]
        first_pick = facts.pick(first.name)
        via = first.via or (first_pick.via if first_pick is not None else None) or "?"
        evidence = []
        for got, intended in pairs:
            how = (
                f"loaded via {got.via} (needed by {text(got.needed_by)})"
                if got.loaded
                else f"dlopen('{got.name}') picks it via {via}"
            )
            evidence.append(f"{got.name}: {_where(got)} {how}; the wheel's copy: {_where(intended)}")
        names = ", ".join(
            f"{got.name} {text(got.version)} instead of {text(intended.version)}" for got, intended in pairs
        )
        intended_dir = _dir(pairs[0][1].path)
        if via == "ld_library_path" and directory in llp:
            kept = [d for d in llp if d and d != directory]
            fix = (
                f"Remove {directory} from LD_LIBRARY_PATH: "
                + (f"ENV LD_LIBRARY_PATH={':'.join(kept)}" if kept else "unset LD_LIBRARY_PATH")
                + f" (it now is {':'.join(llp)})."
            )
        else:
            package = f" or remove its owner ({first.dist})" if first.dist else ""
            fix = (
                f"Put the wheel's directory first: ENV LD_LIBRARY_PATH={intended_dir}"
                + (f":{':'.join(d for d in llp if d)}" if any(llp) else "")
                + f"{package}; or drop {directory} from /etc/ld.so.conf.d and run ldconfig."
            )
        out.append(
            Finding(
                code=Code.LIBRARY_SHADOWED,
                severity="warning",
                message=f"{len(pairs)} CUDA librar{'y' if len(pairs) == 1 else 'ies'} would load from {directory} "
                f"({first.origin}) instead of the nvidia-* wheels' copies: {names}",
                evidence=tuple(evidence),
                fix=fix,
            )
        )
    return out


def _mixed(facts: Facts) -> list[Finding]:
    """CUDA libraries that load together from different origins with different CUDA versions."""
    loading = [lib for lib in would_load(facts).values() if lib.family in RUNTIME_FAMILIES]
    numbered = [lib for lib in loading if lib.family in CUDA_NUMBERED and lib.nv is not None]
    origins = {lib.origin for lib in numbered}
    releases = {str(lib.nv.truncate(2)) for lib in numbered if lib.nv is not None}
    majors = {lib.nv.major for lib in numbered if lib.nv is not None}
    if not ((len(origins) > 1 and len(releases) > 1) or len(majors) > 1):
        return []
    return [
        Finding(
            code=Code.MIXED_CUDA_ORIGINS,
            severity="warning",
            message=f"the CUDA libraries that would load together come from {len(origins)} origin(s) "
            f"({', '.join(sorted(origins))}) with CUDA {', '.join(sorted(releases))}",
            evidence=tuple(f"{lib.name} => {_where(lib)}" for lib in sorted(numbered, key=lambda x: x.name)),
            fix="Use one CUDA stack: either pip's nvidia-* wheels (remove conda's/the toolkit's lib dir from "
            "LD_LIBRARY_PATH, `conda uninstall cuda-toolkit`) or the system toolkit.",
        )
    ]


def _cudnn(facts: Facts) -> list[Finding]:
    from imagesmith.matrix.versions import NvVersion

    lib = next(
        (x for x in would_load(facts).values() if x.family == "cudnn" and x.name.startswith("libcudnn.so")),
        None,
    )
    if lib is None or lib.nv is None:
        return []
    out: list[Finding] = []
    for fw in facts.frameworks:
        pin = next((v for k, v in fw.pins.items() if k.startswith("nvidia-cudnn")), None)
        want = NvVersion.leading(pin)
        if want is None:
            continue
        verdict = matrix_rules.cudnn_for_build(loaded=lib.nv, built_with=want)
        for reason in verdict.reasons:
            out.append(
                Finding(
                    code=reason.code,
                    severity=_SEVERITY[reason.severity],
                    message=f"{fw.name} {fw.version} was {reason.message}",
                    evidence=(
                        f"libcudnn => {_where(lib)} via {text(lib.via)}",
                        f"{fw.name} METADATA pins nvidia-cudnn=={pin}",
                    ),
                    fix=f"Remove {_dir(lib.path)} from LD_LIBRARY_PATH, or `pip install "
                    f"nvidia-cudnn-cu{want.major if want.major > 9 else 12}=={pin}`.",
                )
            )
    return out


def _glibc(facts: Facts) -> list[Finding]:
    from imagesmith.matrix.versions import NvVersion

    have, need = NvVersion.leading(facts.glibc_version), NvVersion.leading(facts.glibc_required)
    if have is None or need is None or need <= have:
        return []
    return [
        Finding(
            code=Code.GLIBC_TOO_OLD,
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


def _empty_element(facts: Facts) -> list[Finding]:
    llp = list(facts.ld_library_path)
    if "" not in llp:
        return []
    kept = [d for d in llp if d]
    return [
        Finding(
            code=Code.LD_LIBRARY_PATH_EMPTY_ELEMENT,
            severity="warning",
            message="LD_LIBRARY_PATH has an empty element: the loader searches the current directory there, so a "
            "library in whatever directory the process starts in can shadow the real one",
            evidence=(f"LD_LIBRARY_PATH={':'.join(llp)}",),
            fix=(f"ENV LD_LIBRARY_PATH={':'.join(kept)}" if kept else "unset LD_LIBRARY_PATH")
            + "  (a trailing ':' in `ENV LD_LIBRARY_PATH=/x:${LD_LIBRARY_PATH}` with an unset variable makes one)",
        )
    ]
