"""``imagesmith doctor --image REF``: will an image (its io.imagesmith.* labels and ENV) run on this node's
driver and GPUs? The same matrix rules as the diagnosis, fed from the image's labels instead of its files."""

from __future__ import annotations

from imagesmith.doctor.facts import Facts
from imagesmith.doctor.findings import Diagnosis, Finding, ordered
from imagesmith.doctor.rules import _from_verdict, driver_version, match_gpu
from imagesmith.errors import ImagesmithError
from imagesmith.matrix import rules as matrix_rules
from imagesmith.matrix.codes import Code

TYPE_CHECKING = False  # mypy treats this name as True
if TYPE_CHECKING:
    from imagesmith.matrix.knowledge import Knowledge


def _required_cuda(env: dict[str, object]) -> str | None:
    """``cuda>=12.4`` in NVIDIA_REQUIRE_CUDA (the nvidia/cuda images' own promise)."""
    text = str(env.get("NVIDIA_REQUIRE_CUDA", ""))
    for token in text.replace(",", " ").split():
        if token.startswith("cuda>="):
            return token[len("cuda>=") :]
    return None


def check_image(facts: Facts, image: dict[str, object], kb: Knowledge) -> Diagnosis:
    from imagesmith.contract import labels as contract
    from imagesmith.contract.sm import ptx_of, sass_of
    from imagesmith.matrix.versions import Capability, NvVersion

    labels = image.get("labels") or {}
    assert isinstance(labels, dict)
    promised = contract.ImageLabels.from_labels(labels)
    env = image.get("env") or {}
    assert isinstance(env, dict)
    ref = str(image.get("ref"))
    findings: list[Finding] = []
    driver = driver_version(facts)
    cuda_text = promised.cuda or _required_cuda(env)
    subject: dict[str, object] = {"image": ref, "labels": contract.ours(labels)}
    if image.get("source"):  # where the labels were read: "registry" | "cache" | "engine"
        subject["source"] = image["source"]
        subject["digest"] = image.get("digest")
        if image.get("registry_error"):  # read from the engine because the registry could not answer
            subject["registry_error"] = image["registry_error"]
    drv = facts.kernel_nv or NvVersion.leading(driver)
    if driver is None or drv is None:
        findings.append(
            Finding(
                code=Code.NO_GPU_VISIBLE,
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
    evidence = (f"image {ref}: {contract.CUDA}={cuda_text or '?'}", f"node driver {driver}")
    min_driver = NvVersion.leading(promised.min_driver)
    gpu = next((g for g in (match_gpu(kb, x.name) for x in facts.probe.gpus) if g is not None), None)
    cuda = NvVersion.leading(cuda_text)
    if cuda is not None:
        verdict = matrix_rules.runtime_on_driver(kb, cuda=cuda, driver=drv, gpu=gpu)
        findings += _from_verdict(verdict, evidence, cuda_major=cuda.major, driver=driver)
    if (
        min_driver is not None
        and drv < min_driver
        and not any(f.code == Code.DRIVER_TOO_OLD for f in findings)
    ):
        findings.append(
            Finding(
                code=Code.DRIVER_TOO_OLD,
                severity="error",
                message=f"the image declares {contract.MIN_DRIVER}={min_driver}; this node's driver is {driver}",
                evidence=evidence,
                fix=f"Upgrade the node driver to >= {min_driver}, or pick an image built for an older CUDA.",
            )
        )
    sm_text = ",".join(promised.sm)
    sass, _ = Capability.parse_all(sass_of(promised.sm))
    ptx, _ = Capability.parse_all(ptx_of(promised.sm))
    if sass or ptx:
        for g in facts.probe.gpus:
            if g.cc is None:
                continue
            verdict = matrix_rules.kernel_for_gpu(sass=tuple(sass), ptx=tuple(ptx), capability=g.cc)
            for reason in verdict.reasons:
                if reason.code in (Code.NO_KERNEL_IMAGE, Code.PTX_JIT_CAVEAT):
                    findings.append(
                        Finding(
                            code=reason.code,
                            severity="error" if reason.severity == "fail" else "warning",
                            message=f"GPU {g.index} {g.name} ({g.cc.sm}): {reason.message}",
                            evidence=(f"{contract.SM}={sm_text}", f"GPU {g.index} capability {g.capability}"),
                            fix=f"Use an image whose {contract.SM} covers {g.cc.sm}.",
                        )
                    )
    return Diagnosis(findings=ordered(findings), subject=subject, driver={"version": driver})


def unreadable(ref: str, error: ImagesmithError) -> Diagnosis:
    """The report for an image whose labels could not be read (so ``--json`` always prints JSON)."""
    return Diagnosis(
        findings=(
            Finding(
                code=Code.IMAGE_UNREADABLE,
                severity="error",
                message=f"cannot read the image's labels: {error.one_line()}",
                evidence=(f"--image {ref}",),
                fix="Check the reference, the registry's credentials (`docker login`, DOCKER_CONFIG) or that "
                "the Docker engine answers (DOCKER_HOST) and holds the image.",
            ),
        ),
        subject={"image": ref, "labels": {}},
        driver={},
    )
