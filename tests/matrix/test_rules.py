"""NVIDIA's rules on the real data: the cases platform teams actually trip over."""

from __future__ import annotations

import pytest

from imagesmith.matrix import knowledge, rules, spec
from imagesmith.matrix.model import CONFIDENCES
from imagesmith.matrix.versions import NvVersion

KB = knowledge.load()


def check(framework: str, driver: str, gpu: str, compat: str | None = None) -> rules.Verdict:
    build = spec.resolve(KB, framework)
    return rules.evaluate(
        KB,
        cuda=build.cuda,
        sass=build.sass,
        ptx=build.ptx,
        driver=NvVersion.parse(driver),
        gpu=KB.find_gpu(gpu),
        compat_cuda=NvVersion.parse(compat) if compat else None,
    )


def test_mvc_on_an_older_branch_is_a_caveat_not_an_error() -> None:
    verdict = check("torch==2.4.1+cu124", "535.104.05", "H100")
    assert verdict.verdict == rules.CAVEATS
    assert {"MINOR_VERSION_COMPATIBLE", "PTX_JIT_CAVEAT"} <= set(verdict.codes())


def test_below_the_mvc_floor_the_driver_is_too_old() -> None:
    verdict = check("torch==2.4.1+cu124", "470.82.01", "A100")
    assert verdict.verdict == rules.FAILS
    assert "DRIVER_TOO_OLD" in verdict.codes()


def test_same_toolkit_driver_is_plain_backward_compatibility() -> None:
    verdict = check("torch==2.7.0+cu128", "570.133.20", "H100")
    assert verdict.verdict == rules.WORKS
    assert "BACKWARD_COMPATIBLE" in verdict.codes()


def test_pypi_default_switches_to_cu130_in_2_11() -> None:
    assert spec.resolve(KB, "torch==2.10.0").variant == "cu128"
    assert spec.resolve(KB, "torch==2.11.0").variant == "cu130"
    # A 570 (CUDA 12.8) node can no longer run a plain `pip install torch`: the 13.x floor is R580.
    verdict = check("torch==2.11.0", "570.133.20", "H100")
    assert verdict.verdict == rules.FAILS and "DRIVER_TOO_OLD" in verdict.codes()
    assert check("torch==2.11.0", "580.65.06", "H100").verdict == rules.WORKS


def test_volta_dropped_from_cu128_in_2_11() -> None:
    assert check("torch==2.10.0+cu128", "580.82.07", "V100").verdict == rules.WORKS
    verdict = check("torch==2.11.0+cu128", "580.82.07", "V100")
    assert verdict.verdict == rules.FAILS and "NO_KERNEL_IMAGE" in verdict.codes()
    assert check("torch==2.11.0+cu126", "580.82.07", "V100").ok


def test_blackwell_needs_cu128() -> None:
    assert "NO_KERNEL_IMAGE" in check("torch==2.6.0+cu126", "570.133.20", "RTX 5090").codes()
    assert check("torch==2.7.0+cu128", "570.133.20", "GeForce RTX 5090").verdict == rules.WORKS


def test_blackwell_needs_a_driver_that_knows_it() -> None:
    verdict = check("torch==2.7.0+cu128", "565.57.01", "B200")
    assert "GPU_UNSUPPORTED_BY_DRIVER" in verdict.codes()


def test_forward_compat_on_datacenter_vs_geforce() -> None:
    # cuda-compat-13-0 lets an R570 data-center node run a CUDA 13.0 build ...
    dc = check("torch==2.11.0+cu130", "570.133.20", "H100", compat="13.0")
    assert dc.ok and "FORWARD_COMPAT" in dc.codes()
    # ... and fails with error 804 on a GeForce card.
    geforce = check("torch==2.11.0+cu130", "570.133.20", "RTX 4090", compat="13.0")
    assert geforce.verdict == rules.FAILS and "FORWARD_COMPAT_UNSUPPORTED_GPU" in geforce.codes()


def test_forward_compat_only_on_listed_branches() -> None:
    # R550 is end of life: no compat package targets it.
    verdict = check("torch==2.11.0+cu130", "550.54.15", "H100", compat="13.0")
    assert verdict.verdict == rules.FAILS and "FORWARD_COMPAT_UNSUPPORTED_BRANCH" in verdict.codes()


def test_kepler_on_r470_and_not_after() -> None:
    on_470 = check("torch==1.13.1+cu116", "470.82.01", "K80")
    assert on_470.verdict == rules.CAVEATS and "MINOR_VERSION_COMPATIBLE" in on_470.codes()
    after = check("torch==1.13.1+cu116", "510.47.03", "K80")
    assert after.verdict == rules.FAILS and "GPU_UNSUPPORTED_BY_DRIVER" in after.codes()


def test_volta_has_no_driver_after_r580() -> None:
    verdict = check("torch==2.11.0+cu126", "590.44.01", "V100")
    assert "GPU_UNSUPPORTED_BY_DRIVER" in verdict.codes()


def test_ptx_only_gpu_on_an_mvc_driver_cannot_jit() -> None:
    # TF 2.16 carries Hopper only as compute_90 PTX built by CUDA 12.3; R535 (12.2) cannot JIT it.
    verdict = check("tensorflow==2.16.1", "535.104.05", "sm_90")
    assert verdict.verdict == rules.FAILS and "PTX_JIT_UNSUPPORTED" in verdict.codes()
    assert check("tensorflow==2.16.1", "550.54.15", "H100").verdict == rules.CAVEATS


@pytest.mark.parametrize(
    ("sass", "ptx", "cap", "code"),
    [
        (("8.0",), (), "8.6", "KERNEL_IMAGE"),  # same major, higher minor
        (("8.6",), (), "8.0", "NO_KERNEL_IMAGE"),  # never down
        (("9.0",), (), "10.0", "NO_KERNEL_IMAGE"),  # never across majors
        (("10.0",), (), "12.0", "NO_KERNEL_IMAGE"),  # datacenter Blackwell SASS is not RTX Blackwell
        (("9.0",), ("9.0",), "12.0", "PTX_JIT_CAVEAT"),  # PTX runs on anything newer
        (("12.0",), (), "12.1", "KERNEL_IMAGE"),
    ],
)
def test_binary_compatibility(sass: tuple[str, ...], ptx: tuple[str, ...], cap: str, code: str) -> None:
    verdict = rules.kernel_for_gpu(
        sass=tuple(NvVersion.parse(s) for s in sass),
        ptx=tuple(NvVersion.parse(p) for p in ptx),
        capability=NvVersion.capability(cap),
    )
    assert verdict.codes() == (code,)


def test_every_build_resolves_and_every_row_is_sourced() -> None:
    for framework in knowledge.FRAMEWORKS:
        for build in KB.builds(framework):
            assert build.provenance.source and build.provenance.confidence in CONFIDENCES
            assert build.sass or build.ptx, f"{framework} {build.release} {build.variant} carries no code"
    for gpu in KB.gpus:
        assert gpu.provenance is not None and gpu.provenance.source
        assert gpu.architecture in KB.architectures
