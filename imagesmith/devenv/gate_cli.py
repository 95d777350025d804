"""`imagesmith dev gate`: the gate before paying, as a command (``gate_command``; `imagesmith dev` registers it).

Exit codes: 0 the dev image runs on the target, 1 refused (reason codes and the nearest fix), 2 bad input,
3 unknown (the target's driver is not in the data: say so, never pass).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from imagesmith.errors import UsageError


def _labels(image: str | None, project: Path, built: bool) -> tuple[str, Any, Any]:
    """(reference judged, its ImageLabels, the curated catalog to find fixes in)."""
    from imagesmith.devenv import remote
    from imagesmith.devenv.gate import labels_of
    from imagesmith.images import catalog

    recorded = remote.answers(project) if (project / remote.ANSWERS).is_file() else {}
    curated = remote.curated_catalog(recorded) if recorded else catalog.embedded_catalog()
    if image is None:
        if not recorded:
            raise UsageError(
                f"no {remote.ANSWERS} here: run it in a generated project, or name the image",
                where="--image/--project",
            )
        ref, labels = remote.image_labels(project, built=built)
        return ref, labels, curated
    choice = curated.known().get(image)
    if choice is not None:
        return image, labels_of(choice), curated
    from imagesmith.registry.facts import image_facts

    return image, image_facts(image).promised, curated


@click.command("gate")
@click.option(
    "--target",
    type=click.Choice(["k8s", "sky", "vm"]),
    default="k8s",
    show_default=True,
    help="Where the dev environment starts: a Kubernetes node image, SkyPilot's VM image, or a plain VM image.",
)
@click.option(
    "--instance",
    help="An instance type of the picker's catalog (default: the one the project's files select).",
)
@click.option(
    "--cloud",
    type=click.Choice(["aws", "gcp", "azure"]),
    help="The instance's cloud (default: the project's).",
)
@click.option(
    "--provider-image",
    help="Judge against this provider image's driver (an id of imagesmith/devenv/data/provider_drivers.toml).",
)
@click.option(
    "--nodes", "nodes_file", type=click.Path(dir_okay=False), help="`kubectl get nodes -o json` output."
)
@click.option("--selector", "-l", help="The node pool in --nodes: label=value[,label2=value2].")
@click.option(
    "--image", help="Judge this image instead of the project's dev image: a curated tag or any reference."
)
@click.option(
    "--built", is_flag=True, help="Read the built dev image's labels from its registry (not the plan's)."
)
@click.option(
    "--project",
    type=click.Path(file_okay=False, path_type=Path),
    default=".",
    show_default=True,
    help="The generated project.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (schema 1).")
def gate_command(
    target: str,
    instance: str | None,
    cloud: str | None,
    provider_image: str | None,
    nodes_file: str | None,
    selector: str | None,
    image: str | None,
    built: bool,
    project: Path,
    as_json: bool,
) -> None:
    """Does the dev image run where it is about to start? Exit 0 yes, 1 refused, 3 unknown."""
    from imagesmith.devenv import gate, remote

    if nodes_file and instance:
        raise UsageError("judge a node pool or an instance, not both", where="--nodes/--instance")
    if nodes_file and not selector:
        raise UsageError("name the node pool: -l label=value", where="--nodes")
    ref, labels, curated = _labels(image, project, built)
    chosen: gate.Target
    if nodes_file:
        chosen = gate.pool_target(nodes_file, str(selector))
    else:
        if instance is None:
            if target == "vm":
                raise UsageError("a plain VM target needs --instance TYPE --cloud C", where="--target vm")
            instance, project_cloud = remote.project_instance(project, target)
            cloud = cloud or project_cloud
            if not instance:
                raise UsageError("the project's files select no instance type", where="--instance")
        if cloud is None:
            recorded = remote.answers(project) if (project / remote.ANSWERS).is_file() else {}
            cloud = str(recorded.get("cloud") or "aws")
        chosen = gate.instance_target(instance, cloud, target=target, provider_image_id=provider_image)
    answer = gate.check(labels, chosen, image=ref, curated=curated)
    click.echo(json.dumps(answer.to_json(), indent=1) if as_json else answer.text())
    answer.raise_unless_pass()
