"""`imagesmith fleet scan|upgrade|policy`: thin translators onto the fleet core."""

from __future__ import annotations

import json
from typing import Any

import click

from imagesmith.errors import NegativeAnswer, UsageError


def _source_options(command: Any) -> Any:
    for option in reversed(
        [
            click.option(
                "--nodes",
                "nodes_file",
                type=click.Path(dir_okay=False),
                help="`kubectl get nodes -o json` output.",
            ),
            click.option(
                "--pods",
                "pods_file",
                type=click.Path(dir_okay=False),
                help="`kubectl get pods -A -o json` output.",
            ),
            click.option(
                "--kubeconfig",
                type=click.Path(dir_okay=False),
                help="Read the cluster's API (default: $KUBECONFIG or ~/.kube/config).",
            ),
            click.option("--context", help="kubeconfig context."),
            click.option("--in-cluster", is_flag=True, help="Use the pod's service account."),
            click.option("--namespace", "-n", help="Only pods of this namespace."),
            click.option(
                "--images",
                "images_file",
                type=click.Path(dir_okay=False),
                help="JSON {image: {labels, env}} instead of reading each image's labels from its registry.",
            ),
            click.option("--json", "as_json", is_flag=True, help="Print JSON (schema 1)."),
        ]
    ):
        command = option(command)
    return command


def _inputs(options: dict[str, Any], *, pods: bool = True) -> tuple[list[Any], list[Any]]:
    from imagesmith.fleet import cluster
    from imagesmith.fleet.gfd import nodes_of
    from imagesmith.fleet.workloads import workloads

    nodes_file, pods_file = options.get("nodes_file"), options.get("pods_file")
    if (nodes_file is None) != (pods_file is None and pods):
        raise UsageError(
            "give both --nodes and --pods (files), or neither (the cluster's API)", where="--nodes/--pods"
        )
    if nodes_file is not None:
        source = cluster.ClusterSource(nodes_file=nodes_file, pods_file=pods_file)
    else:
        source = cluster.ClusterSource(
            kubeconfig=options.get("kubeconfig"),
            context=options.get("context"),
            in_cluster=options.get("in_cluster", False),
        )
    nodes = nodes_of(cluster.read_nodes(source))
    found = workloads(cluster.read_pods(source, namespace=options.get("namespace"))) if pods else []
    return nodes, found


def _judge(options: dict[str, Any]) -> Any:
    from imagesmith.fleet import images
    from imagesmith.fleet.scan import Judge
    from imagesmith.matrix import knowledge

    resolve = (
        images.from_file(options["images_file"]) if options.get("images_file") else images.from_registry()
    )
    return Judge(knowledge.load(), resolve)


@click.group("fleet")
def fleet() -> None:
    """The compatibility engine on a Kubernetes fleet (nodes' GPU Feature Discovery labels, pods, images)."""


@fleet.command("scan")
@_source_options
def scan_command(as_json: bool, **options: Any) -> None:
    """Every workload's image judged on the nodes it may land on; exit 1 when a running pod is at risk."""
    from imagesmith.fleet import render
    from imagesmith.fleet.scan import scan

    nodes, found = _inputs(options)
    report = scan(nodes, found, _judge(options))
    if as_json:
        import sys

        report.write_json(sys.stdout.write)
    else:
        click.echo(render.scan_text(report, nodes))
    if report.at_risk:
        raise NegativeAnswer(f"{len(report.at_risk)} running pod(s) at risk: their image fails on their node")


@fleet.command("upgrade")
@_source_options
@click.option("--selector", "-l", required=True, help="The nodes that change: label=value[,label2=value2].")
@click.option("--driver", help="The driver version they move to, e.g. 570.124.06.")
@click.option("--gpu", help="The GPU model the pool moves to (a node pool that changes hardware), e.g. H100.")
def upgrade_command(
    as_json: bool, selector: str, driver: str | None, gpu: str | None, **options: Any
) -> None:
    """What moving the selected nodes to a driver (or GPU) would break and fix; exit 1 when something breaks."""
    from imagesmith.fleet import render
    from imagesmith.fleet import scan as scan_mod
    from imagesmith.fleet.gfd import NodeFacts, with_driver, with_gpu
    from imagesmith.matrix.answer import parse_driver

    if driver is None and gpu is None:
        raise UsageError("say what changes: --driver VERSION and/or --gpu NAME", where="fleet upgrade")
    new_driver = parse_driver(driver) if driver is not None else None
    judge = _judge(options)
    new_gpu = judge.kb.find_gpu(gpu) if gpu is not None else None

    def change(node: NodeFacts) -> NodeFacts:
        out = with_driver(node, new_driver) if new_driver is not None else node
        return with_gpu(out, new_gpu.name, new_gpu.capability) if new_gpu is not None else out

    nodes, found = _inputs(options)
    match = scan_mod.selector(selector)
    if not any(match(n) for n in nodes):
        raise UsageError("no node matches", where=f"--selector {selector!r}")
    report = scan_mod.upgrade(nodes, found, judge, selected=match, change=change)
    click.echo(
        json.dumps(report.to_json(), indent=1)
        if as_json
        else render.upgrade_text(report, driver=driver, gpu=gpu)
    )
    if report.breaks:
        raise NegativeAnswer(f"{len(report.breaks)} running pod(s) would break")


@fleet.command("policy")
@_source_options
@click.option(
    "--check",
    "policy_file",
    type=click.Path(dir_okay=False),
    help="Compare with this imagesmith.yaml's fleet.",
)
def policy_command(as_json: bool, policy_file: str | None, **options: Any) -> None:
    """The fleet section of imagesmith.yaml from the cluster's nodes; --check exits 1 on drift."""
    from imagesmith.fleet import policy
    from imagesmith.matrix import knowledge

    nodes, _ = _inputs({**options, "pods_file": options.get("pods_file")}, pods=False)
    derived = policy.derive(knowledge.load(), nodes)
    if policy_file is None:
        click.echo(json.dumps(derived.to_json(), indent=1) if as_json else policy.render(derived))
        return
    from imagesmith.images.policy import load_policy

    drift = policy.check(load_policy(policy_file, knowledge.load()), derived)
    click.echo(
        json.dumps(policy.drift_json(drift), indent=1) if as_json else policy.drift_text(drift, policy_file)
    )
    if drift:
        raise NegativeAnswer(f"{len(drift)} difference(s) between {policy_file} and the cluster")
