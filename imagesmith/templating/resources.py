"""Turn the template's resource answers into an instance type through the instance picker.

Pure except for the picker call, which is imported lazily so loading the extension stays cheap.
"""

from __future__ import annotations

from dataclasses import dataclass

from imagesmith.errors import UsageError

CLOUDS = ("aws", "gcp", "azure")


@dataclass(frozen=True, kw_only=True)
class Resources:
    """What one replica of the workload asks for; GPU fields are ignored when ``gpus`` is 0."""

    cpus: int
    memory_gb: int
    gpus: int
    gpu_memory_gb: int
    gpu_model: str | None
    cloud: str


def parse_count(value: object, *, name: str, minimum: int) -> int:
    """Read a whole-number answer; copier hands us str or int depending on where it came from."""
    text = str(value).strip()
    try:
        number = int(text)
    except ValueError:
        raise UsageError(f"expected a whole number, got {text!r}", where=name) from None
    if number < minimum:
        raise UsageError(f"must be at least {minimum}, got {number}", where=name)
    return number


def resources_from_answers(
    *,
    cpus: object,
    memory_gb: object,
    gpus: object,
    gpu_memory_gb: object = 0,
    gpu_model: object = "",
    cloud: object = "aws",
) -> Resources:
    cloud_name = str(cloud).strip().lower()
    if cloud_name not in CLOUDS:
        raise UsageError(f"unknown cloud {cloud_name!r} (choose one of {', '.join(CLOUDS)})", where="cloud")
    model = str(gpu_model or "").strip()
    return Resources(
        cpus=parse_count(cpus, name="cpus", minimum=1),
        memory_gb=parse_count(memory_gb, name="memory_gb", minimum=1),
        gpus=parse_count(gpus, name="gpus", minimum=0),
        gpu_memory_gb=parse_count(gpu_memory_gb or 0, name="gpu_memory_gb", minimum=0),
        gpu_model=model or None,
        cloud=cloud_name,
    )


def picker_arguments(res: Resources) -> dict[str, str | None]:
    """The ``imagesmith.picker.pick`` keyword arguments: requests are floors, so every bound is ``N+``."""
    args: dict[str, str | None] = {
        "cpus": f"{res.cpus}+",
        "memory": f"{res.memory_gb}+",
        "gpus": str(res.gpus),
        "cloud": res.cloud,
    }
    if res.gpus:
        args["gpu"] = res.gpu_model
        if res.gpu_memory_gb:
            args["gpu_memory"] = f"{res.gpu_memory_gb}+"
    return args


def instance_type(res: Resources) -> str:
    """The cheapest fitting instance type, or "" when nothing in the catalog fits (no node selector)."""
    from imagesmith.picker import pick  # lazy: the picker loads its catalog

    args = picker_arguments(res)
    result = pick(
        cpus=args["cpus"],
        memory=args["memory"],
        gpus=args["gpus"],
        gpu=args.get("gpu"),
        gpu_memory=args.get("gpu_memory"),
        cloud=args["cloud"],
        # Jobs and services run flat out; burstable credits would throttle them mid-run.
        no_burstable=True,
    )
    choice = result.choice
    return "" if choice is None else str(choice.instance_type)
