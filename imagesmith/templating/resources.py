"""Turn the template's resource answers into an instance type through the instance picker.

Pure except for the picker call, which is imported lazily so loading the extension stays cheap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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


AUTO = "auto"


@dataclass(frozen=True, kw_only=True)
class Placement:
    """The node type the manifests select and the sentence their header says about it."""

    instance_type: str  # "" = no node selector
    pinned: bool
    fits: bool
    note: str


def _asked(res: Resources) -> str:
    gpu = f", {res.gpus} GPU(s) with {res.gpu_memory_gb}+ GiB" if res.gpus else ""
    return f"{res.cpus} CPUs, {res.memory_gb} GiB{gpu} on {res.cloud}"


def _offers(result: Any) -> str:
    o = result.offer
    if o is None:
        return ""
    return f": it offers pods {o.cpus:.2f} vCPU, {o.memory_gib:.2f} GiB (allocatable less DaemonSet headroom)"


def place(res: Resources, pin: object = AUTO) -> Placement:
    """``auto``: the cheapest type whose offer to pods covers the requests, picked again at every render (so a
    ``copier update`` with new resources re-picks). A pinned type is kept, and checked: when it no longer fits,
    the header says so and a warning names the miss (the user's pin is theirs to change, never silently)."""
    from imagesmith.picker import PickRequest, pick  # lazy: the picker loads its catalog

    wanted = AUTO if pin is None else str(pin).strip()
    if not wanted:
        return Placement(
            instance_type="",
            pinned=True,
            fits=True,
            note="No node selector: the instance_type answer is empty (answer auto to pick one).",
        )
    args = picker_arguments(res)
    request = PickRequest(
        cpus=args["cpus"],
        memory=args["memory"],
        gpus=args["gpus"],
        gpu=args.get("gpu"),
        gpu_memory=args.get("gpu_memory"),
        cloud=args["cloud"],
        # Jobs and services run flat out; burstable credits would throttle them mid-run.
        no_burstable=True,
        instance_type=None if wanted == AUTO else wanted,
        top=1,
    )
    result = pick(request)
    choice = result.choice
    if wanted == AUTO:
        if choice is None:
            return Placement(
                instance_type="",
                pinned=False,
                fits=False,
                note=f"No instance type in the catalog fits {_asked(res)}: no node selector.",
            )
        return Placement(
            instance_type=choice.instance_type,
            pinned=False,
            fits=True,
            note=f"Instance type {choice.instance_type} picked by `imagesmith pick` for {_asked(res)}{_offers(result)}.",
        )
    if choice is not None:
        return Placement(
            instance_type=wanted,
            pinned=True,
            fits=True,
            note=f"Instance type {wanted} pinned by the instance_type answer; it fits {_asked(res)}{_offers(result)}.",
        )
    why = "; ".join(str(f) for f in result.rejected[0].failed) if result.rejected else "no row"
    return Placement(
        instance_type=wanted,
        pinned=True,
        fits=False,
        note=(
            f"Instance type {wanted} pinned by the instance_type answer does NOT fit {_asked(res)} ({why}); "
            "answer instance_type=auto to re-pick."
        ),
    )


def instance_type(res: Resources) -> str:
    """The cheapest fitting instance type, or "" when nothing in the catalog fits (no node selector)."""
    return place(res).instance_type
