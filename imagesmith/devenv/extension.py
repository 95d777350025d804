"""Jinja globals for the remote dev environment files the templates render (``deploy/dev/``).

Registered in ``copier.yml`` next to ``imagesmith.templating.extension.ImagesmithExtension``:
``imagesmith_dev_instance(node_instance_type, cloud)`` is the picker's catalog row of the instance type the
manifests select (the one ``imagesmith_node_instance`` picked): its GPU for SkyPilot's ``accelerators`` and the
region the picker priced it in.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from jinja2 import Environment
from jinja2.ext import Extension


@cache
def dev_instance(instance_type: object, cloud: object) -> dict[str, Any]:
    """``{"instance_type", "gpu", "gpus", "accelerators", "region", "vcpus", "memory_gib"}`` of the picked type
    (its cheapest on-demand row); empty values when the type is empty or unknown to the catalog."""
    from imagesmith.picker import catalog

    wanted, where = str(instance_type or "").strip(), str(cloud or "").strip()
    rows = (
        [r for r in catalog.load().rows if r.instance_type == wanted and r.cloud == where] if wanted else []
    )
    priced = [r for r in rows if r.price_on_demand is not None] or rows
    if not priced:
        return {
            "instance_type": "",
            "gpu": "",
            "gpus": 0,
            "accelerators": "",
            "region": "",
            "vcpus": 0,
            "memory_gib": 0,
        }
    row = min(priced, key=lambda r: (r.price_on_demand or 0.0, r.region, r.zone))
    gpus = int(row.gpu_count) if row.gpu_count >= 1 else 0
    return {
        "instance_type": row.instance_type,
        "gpu": row.gpu_model,
        "gpus": gpus,
        "accelerators": f"{row.gpu_model}:{gpus}" if row.gpu_model and gpus else "",
        "region": row.region,
        "vcpus": row.vcpus,
        "memory_gib": row.memory_gib,
    }


class DevenvExtension(Extension):
    """Registers ``imagesmith_dev_instance`` for the templates."""

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        environment.globals.update(imagesmith_dev_instance=dev_instance)
