"""``imagesmith images``: plan and render the curated image set from the policy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from imagesmith.errors import EXIT_NEGATIVE, EXIT_OK, EnvironmentProblem, NegativeAnswer, UsageError
from imagesmith.images.plan import Plan, make_plan
from imagesmith.images.policy import load_policy
from imagesmith.matrix import knowledge

POLICY_HELP = "Policy file (default: ./imagesmith.yaml, else the embedded default)."


def _plan(policy: Path | None) -> Plan:
    kb = knowledge.load()
    return make_plan(kb, load_policy(policy, kb))


def plan_payload(plan: Plan) -> dict[str, Any]:
    return {
        "schema": 1,
        "policy": plan.policy.source,
        "images": [
            {
                "name": i.name,
                "tag": i.tag,
                "aliases": list(i.aliases),
                "parent": i.parent,
                "base": i.base.image,
                "variant": i.variant,
                "framework": i.framework_spec,
                "cuda": str(i.cuda) if i.cuda else None,
                "cudnn": str(i.cudnn) if i.cudnn else None,
                "python": i.python,
                "min_driver": str(i.min_driver) if i.min_driver else None,
                "full_driver": str(i.full_driver) if i.full_driver else None,
                "sm": i.sm or None,
                "nodes": list(i.nodes),
            }
            for i in plan.images
        ],
        "coverage": [{"line": c[0], "node": c[1], "build": c[2], "verdict": c[3]} for c in plan.coverage],
        "left_out": [{"what": d.subject, "why": d.reason} for d in plan.left_out],
        "uncovered": [{"what": d.subject, "why": d.reason} for d in plan.uncovered],
    }


@click.group()
def images() -> None:
    """Plan and render the curated base images."""


@images.command("plan")
@click.option("--policy", type=click.Path(path_type=Path, dir_okay=False), default=None, help=POLICY_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@click.option("--explain", is_flag=True, help="Also name every combination left out, and why.")
def plan_command(policy: Path | None, as_json: bool, explain: bool) -> int:
    """The smallest image set giving every fleet node a working image for every framework line."""
    plan = _plan(policy)
    if as_json:
        click.echo(json.dumps(plan_payload(plan), indent=2))
        return EXIT_NEGATIVE if plan.uncovered else EXIT_OK
    click.echo(
        f"{len(plan.images)} images from {plan.policy.source} for {len(plan.policy.fleet)} fleet node types:"
    )
    for image in plan.images:
        indent = "  " * (1 + _depth(plan, image.name))
        facts = [image.variant]
        if image.framework:
            facts += [f"CUDA {image.cuda}", f"cuDNN {image.cudnn or '-'}", f"driver >= {image.min_driver}"]
        facts.append(f"py{image.python}")
        click.echo(f"{indent}{image.tag}  ({', '.join(facts)})")
        if image.framework and image.variant == "runtime":
            click.echo(f"{indent}  sm: {image.sm or 'none'}; runs on: {', '.join(image.nodes)}")
    click.echo("coverage:")
    for line, node, build, verdict in plan.coverage:
        click.echo(f"  {line:<22} {node:<16} {build:<28} {verdict}")
    _echo_uncovered(plan)
    if explain:
        click.echo("left out:")
        for d in plan.left_out or ():
            click.echo(f"  {d.subject}: {d.reason}")
        if not plan.left_out:
            click.echo("  nothing")
    return EXIT_NEGATIVE if plan.uncovered else EXIT_OK


def _echo_uncovered(plan: Plan) -> None:
    if plan.uncovered:
        click.echo("NOT COVERED:")
        for d in plan.uncovered:
            click.echo(f"  {d.subject}: {d.reason}")


def _depth(plan: Plan, name: str) -> int:
    depth = 0
    image = plan.image(name)
    while image.parent:
        depth += 1
        image = plan.image(image.parent)
    return depth


def _refuse(plan: Plan, *, allow_uncovered: bool, check: bool) -> None:
    """Refuse a plan the rendered files could not stand behind; raise before anything is written."""
    if not plan.images:
        why = (
            f"every fleet node x framework line pair ({len(plan.uncovered)}) is NOT COVERED"
            if plan.uncovered
            else "no planned build suits the policy's Pythons and bases"
        )
        raise UsageError(
            f"the plan has no images ({why}); nothing rendered, nothing deleted",
            where=plan.policy.source,
            hint="`imagesmith images plan --explain` says why",
        )
    if plan.uncovered and not allow_uncovered:
        _echo_uncovered(plan)
        names = [d.subject for d in plan.uncovered]
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        raise NegativeAnswer(
            f"NOT COVERED: {shown}: the plan leaves {len(names)} fleet node x framework line pair(s)"
            f" without an image; {'nothing checked' if check else 'nothing rendered'}",
            where=plan.policy.source,
            hint="change the fleet or the framework lines, or pass --allow-uncovered to render anyway",
        )


@images.command("render")
@click.option("--policy", type=click.Path(path_type=Path, dir_okay=False), default=None, help=POLICY_HELP)
@click.option(
    "--output-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path(),
    help="Root to write base_images/ and ci/ into (default: the current directory).",
)
@click.option(
    "--check",
    is_flag=True,
    help="Write nothing; exit 1 and list differences if committed files are out of date.",
)
@click.option(
    "--allow-uncovered",
    is_flag=True,
    help="Render even if some fleet nodes get no image; plan.json and ci/images.yml then name them.",
)
def render_command(policy: Path | None, output_dir: Path, check: bool, allow_uncovered: bool) -> int:
    """Write base_images/<image>/Dockerfile, base_images/plan.json, ci/images.yml and ci/docker-bake.json.

    Refuses (exit 1, writing nothing) a plan that leaves a fleet node without an image, unless
    --allow-uncovered; refuses (exit 2) a plan with no images. Removes only image directories it generated.
    """
    from imagesmith.images.render import differences, render_files, write

    plan = _plan(policy)
    _refuse(plan, allow_uncovered=allow_uncovered, check=check)
    rendered = render_files(plan, allow_uncovered=allow_uncovered)
    if check:
        try:
            diffs = differences(rendered, output_dir)
        except OSError as exc:
            raise EnvironmentProblem(
                f"cannot read: {exc.strerror}", where=str(exc.filename or output_dir)
            ) from None
        for line in diffs:
            click.echo(line)
        if diffs:
            click.echo(
                f"{len(diffs)} difference(s) from the policy: run `imagesmith images render`", err=True
            )
            return EXIT_NEGATIVE
        click.echo(f"up to date: {len(rendered.files)} files")
        return EXIT_OK
    try:
        done = write(rendered, output_dir)
    except OSError as exc:
        raise EnvironmentProblem(
            f"cannot write: {exc.strerror}", where=str(exc.filename or output_dir)
        ) from None
    click.echo(f"rendered {len(rendered.files)} files into {output_dir}/ ({len(done.report)} changed)")
    for line in [*done.report, *done.left_alone]:
        click.echo(f"  {line}")
    if plan.uncovered:
        click.echo(
            f"rendered with --allow-uncovered: {len(plan.uncovered)} uncovered pair(s), named in"
            " base_images/plan.json and ci/images.yml:"
        )
        _echo_uncovered(plan)
    return EXIT_OK
