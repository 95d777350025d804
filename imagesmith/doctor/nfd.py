"""The doctor's diagnosis as Node Feature Discovery labels (``imagesmith doctor --nfd-features FILE``).

The names and the value format are the contract's (``imagesmith.contract.nfd``): this module only picks
the facts from a diagnosis. Imported only when ``--nfd-features`` is given.
"""

from __future__ import annotations

from imagesmith import __version__
from imagesmith.contract.nfd import VERDICT_OF_STATUS, NodeFeatures, write_features
from imagesmith.doctor.facts import Facts
from imagesmith.doctor.findings import Diagnosis
from imagesmith.doctor.rules import driver_version


def _cuda(value: int | None) -> str | None:
    """cuDriverGetVersion/NVML's integer (12080) as CUDA's version (12.8)."""
    if not value:
        return None
    return f"{value // 1000}.{(value % 1000) // 10}"


def node_features(facts: Facts, result: Diagnosis) -> NodeFeatures:
    """The node's verdict and facts as the labels carry them."""
    from imagesmith.matrix.versions import NvVersion

    driver = driver_version(facts)
    parsed = NvVersion.leading(driver)
    gpus = facts.probe.gpus
    count = len(gpus) if gpus else (facts.proc_gpus or None)
    return NodeFeatures(
        verdict=VERDICT_OF_STATUS[result.status],
        # Errors first (the findings are ordered by severity); info findings do not change the verdict.
        codes=tuple(dict.fromkeys(f.code for f in result.findings if f.severity in ("error", "warning"))),
        driver=driver,
        driver_major=parsed.major if parsed is not None else None,
        # NVML speaks for the node's driver; cuDriverGetVersion may answer for a compat libcuda.
        cuda_max=_cuda(facts.probe.nvml_cuda) or _cuda(facts.probe.cu_driver_version),
        gpu_count=count,
        gpu_product=gpus[0].name if gpus else None,
        gpu_compute=gpus[0].capability if gpus else None,
        version=__version__,
    )


def write(path: str, facts: Facts, result: Diagnosis) -> None:
    """Write the feature file atomically; ``EnvironmentProblem`` naming ``path`` when it cannot be."""
    write_features(path, node_features(facts, result))
