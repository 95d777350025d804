"""The node labels GPU Feature Discovery sets, and the node affinity written on them: one home for both.

GFD (NVIDIA/k8s-device-plugin, docs/gpu-feature-discovery) labels every GPU node, in two generations that are
both in use: the current ``nvidia.com/cuda.driver-version.*`` and the deprecated ``nvidia.com/cuda.driver.*``.
``imagesmith.fleet.gfd`` reads these keys; the project templates write required node affinity on them, so a
workload is only scheduled where its image's driver floor and kernels hold. Standard library only.
"""

from __future__ import annotations

from collections.abc import Iterable

NS = "nvidia.com/"
DRIVER_FULL = NS + "cuda.driver-version.full"
DRIVER_PARTS = (
    NS + "cuda.driver-version.major",
    NS + "cuda.driver-version.minor",
    NS + "cuda.driver-version.revision",
)
DRIVER_OLD = (NS + "cuda.driver.major", NS + "cuda.driver.minor", NS + "cuda.driver.rev")
RUNTIME_FULL = NS + "cuda.runtime-version.full"
RUNTIME_PARTS = (NS + "cuda.runtime-version.major", NS + "cuda.runtime-version.minor")
RUNTIME_OLD = (NS + "cuda.runtime.major", NS + "cuda.runtime.minor")
PRODUCT = NS + "gpu.product"
COMPUTE = (NS + "gpu.compute.major", NS + "gpu.compute.minor")
COUNT = NS + "gpu.count"
MEMORY = NS + "gpu.memory"
PRESENT = NS + "gpu.present"
GPU_RESOURCE = "nvidia.com/gpu"
INSTANCE_TYPE = "node.kubernetes.io/instance-type"


def _expr(key: str, operator: str, values: list[str]) -> dict[str, object]:
    return {"key": key, "operator": operator, "values": values}


def gpu_affinity(
    *,
    driver_major: int | None,
    sass: Iterable[tuple[int, int]],
    ptx: Iterable[tuple[int, int]] = (),
    ptx_driver_major: int | None = None,
) -> list[dict[str, object]]:
    """``nodeSelectorTerms`` (ORed) admitting the nodes where the image runs: a driver branch of at least
    ``driver_major``, and a compute capability one of its SASS targets runs on (same major, minor at least the
    target's) or, for PTX, any capability at least the lowest PTX target's with a driver branch of at least
    ``ptx_driver_major`` (JIT compiling PTX needs a driver as new as the toolkit that wrote it).

    One set of terms per label generation (current driver labels, then the deprecated ones; the compute labels
    have one). Drivers are constrained to their branch (major): imagesmith's driver floors are branch floors
    (the first production release of a branch), and GFD has no ordered full-version label to compare. Empty when
    the image states neither a floor nor kernels.
    """
    lowest: dict[int, int] = {}
    for major, minor in sass:
        lowest[major] = min(minor, lowest.get(major, minor))
    ptx_low = min(ptx, default=None)
    terms: list[dict[str, object]] = []
    for driver_key in (DRIVER_PARTS[0], DRIVER_OLD[0]):

        def driver(floor: int | None, key: str = driver_key) -> list[dict[str, object]]:
            return [_expr(key, "Gt", [str(floor - 1)])] if floor is not None else []

        if not lowest and ptx_low is None:
            if driver_major is not None:
                terms.append({"matchExpressions": driver(driver_major)})
            continue
        # Majors whose every minor runs (SASS x.0) share one term; sm_86 alone needs "minor > 5" of its own.
        whole = [str(m) for m in sorted(lowest) if lowest[m] == 0]
        if whole:
            terms.append({"matchExpressions": [*driver(driver_major), _expr(COMPUTE[0], "In", whole)]})
        for major in sorted(m for m in lowest if lowest[m] > 0):
            exprs = [*driver(driver_major), _expr(COMPUTE[0], "In", [str(major)])]
            exprs.append(_expr(COMPUTE[1], "Gt", [str(lowest[major] - 1)]))
            terms.append({"matchExpressions": exprs})
        if ptx_low is not None:
            floor = (
                max(f for f in (driver_major, ptx_driver_major) if f is not None)
                if (driver_major is not None or ptx_driver_major is not None)
                else None
            )
            p_major, p_minor = ptx_low
            above = [*driver(floor), _expr(COMPUTE[0], "Gt", [str(p_major if p_minor else p_major - 1)])]
            terms.append({"matchExpressions": above})
            if p_minor:
                same = [*driver(floor), _expr(COMPUTE[0], "In", [str(p_major)])]
                same.append(_expr(COMPUTE[1], "Gt", [str(p_minor - 1)]))
                terms.append({"matchExpressions": same})
    return terms


def affinity_yaml(terms: list[dict[str, object]]) -> str:
    """The ``affinity:`` block (at column 0) for a pod spec; "" for no terms. Block YAML, as a person writes it."""
    if not terms:
        return ""
    lines = [
        "affinity:",
        "  nodeAffinity:",
        "    requiredDuringSchedulingIgnoredDuringExecution:",
        "      nodeSelectorTerms:",
    ]
    for term in terms:
        first = True
        for expr in term["matchExpressions"]:  # type: ignore[attr-defined]
            lead = "        - matchExpressions:\n            - " if first else "            - "
            values = ", ".join(f'"{v}"' for v in expr["values"])
            lines.append(f"{lead}{{key: {expr['key']}, operator: {expr['operator']}, values: [{values}]}}")
            first = False
    return "\n".join(lines)
