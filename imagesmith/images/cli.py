"""``imagesmith images``: plan and render the curated image set from the policy."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from imagesmith.errors import EXIT_NEGATIVE, EXIT_OK, EnvironmentProblem, NegativeAnswer, UsageError
from imagesmith.images import plan_view
from imagesmith.images.plan import Plan

if TYPE_CHECKING:  # `images plan` never reads a lock: keep contract.pins (and hashlib) out of it
    from imagesmith.contract.pins import Lock

POLICY_HELP = "Policy file (default: ./imagesmith.yaml, else the embedded default)."


def _plan(policy: Path | None) -> Plan:
    return plan_view.plan_from(policy)


@click.group()
def images() -> None:
    """Plan and render the curated base images."""


@images.command("plan")
@click.option("--policy", type=click.Path(path_type=Path, dir_okay=False), default=None, help=POLICY_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@click.option("--explain", is_flag=True, help="Also name every combination left out, and why.")
def plan_command(policy: Path | None, as_json: bool, explain: bool) -> int:
    """The smallest image set giving every fleet node a working image for every framework line."""
    out, code = plan_view.render(policy, as_json=as_json, explain=explain)
    click.echo(out)
    return code


def _echo_uncovered(plan: Plan) -> None:
    for line in plan_view.uncovered_lines(plan):
        click.echo(line)


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


def _current_locks(plan: Plan, root: Path, *, allow_unlocked: bool, check: bool) -> dict[str, Lock]:
    """The images' locks that still answer the policy; refuse stale ones, and missing ones unless allowed."""
    from imagesmith.images import lock

    states = lock.state(plan, lock.read_locks(root, plan))
    stale = [s for s in states if s.status == "stale"]
    missing = [s for s in states if s.status == "missing"]
    verb = "nothing checked" if check else "nothing rendered"
    if stale:
        first = stale[0]
        more = (
            f" (and {len(stale) - 1} more: {', '.join(s.image for s in stale[1:])})" if len(stale) > 1 else ""
        )
        raise NegativeAnswer(
            f"the lock of {first.image} no longer matches the policy: {first.why}{more}; {verb}",
            where=str(lock.lock_path(root, first.image)),
            hint=f"run `imagesmith images lock {' '.join(s.image for s in stale)}`",
        )
    if missing and not allow_unlocked:
        names = [s.image for s in missing]
        raise NegativeAnswer(
            f"{len(names)} image(s) have no lock: {', '.join(names)}; {verb}",
            where=str(lock.lock_path(root, names[0])),
            hint="run `imagesmith images lock`, or pass --allow-unlocked to render them with floating versions",
        )
    for s in missing:
        click.echo(f"UNLOCKED: {s.image} (no lock; its versions float)", err=True)
    return {s.image: s.lock for s in states if s.status == "current" and s.lock is not None}


@images.command("lock")
@click.argument("names", nargs=-1)
@click.option("--policy", type=click.Path(path_type=Path, dir_okay=False), default=None, help=POLICY_HELP)
@click.option(
    "--output-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path(),
    help="Root whose base_images/<image>/requirements.lock files are written (default: the current directory).",
)
@click.option(
    "--upgrade", is_flag=True, help="Re-resolve to the newest versions the policy allows; print what moved."
)
@click.option("--index-url", default=None, help="The index the build uses (default: PyPI).")
@click.option(
    "--ca-cert",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    default=None,
    help="CA bundle for the index (a TLS-intercepting proxy).",
)
def lock_command(
    names: tuple[str, ...],
    policy: Path | None,
    output_dir: Path,
    upgrade: bool,
    index_url: str | None,
    ca_cert: Path | None,
) -> int:
    """Resolve each image's Python packages into base_images/<image>/requirements.lock, with hashes.

    A child resolves within its ancestors' pins and its lock holds only what it adds. Without --upgrade,
    current locks stay as they are and a changed policy keeps every pin that still fits.
    """
    from imagesmith.images import lock

    plan = _plan(policy)
    index = index_url or lock.PYPI
    wanted = _selection(plan, names)
    result = lock.lock_images(
        plan, output_dir, wanted=wanted, upgrade=upgrade, index=index, ca_cert=ca_cert, echo=click.echo
    )
    click.echo(f"{result.locked} locked, {result.current} up to date")
    return EXIT_OK


def _selection(plan: Plan, names: tuple[str, ...]) -> frozenset[str]:
    """The named images (tags and aliases work too) and their ancestors; all images when none is named."""
    from imagesmith.errors import UnknownName

    if not names:
        return frozenset(i.name for i in plan.images)
    by_ref = {ref: i.name for i in plan.images for ref in (i.name, i.tag, *i.aliases)}
    chosen: set[str] = set()
    for name in names:
        if name not in by_ref:
            import difflib

            raise UnknownName("image", name, difflib.get_close_matches(name, list(by_ref), n=3))
        image = plan.image(by_ref[name])
        chosen.add(image.name)
        while image.parent:
            image = plan.image(image.parent)
            chosen.add(image.name)
    return frozenset(chosen)


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
@click.option(
    "--allow-unlocked",
    is_flag=True,
    help="Render images that have no lock yet, with floating versions (labelled io.imagesmith.lock=none).",
)
def render_command(
    policy: Path | None, output_dir: Path, check: bool, allow_uncovered: bool, allow_unlocked: bool
) -> int:
    """Write base_images/<image>/Dockerfile, base_images/plan.json, ci/images.yml and ci/docker-bake.json.

    Refuses (exit 1, writing nothing) a plan that leaves a fleet node without an image, unless
    --allow-uncovered; an image whose lock no longer matches the policy (always) or has no lock (unless
    --allow-unlocked); refuses (exit 2) a plan with no images. Removes only image directories it generated.
    """
    from imagesmith.images.render import differences, render_files, write

    plan = _plan(policy)
    _refuse(plan, allow_uncovered=allow_uncovered, check=check)
    current = _current_locks(plan, output_dir, allow_unlocked=allow_unlocked, check=check)
    rendered = render_files(plan, locks=current, allow_uncovered=allow_uncovered)
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


def _register_project_side() -> None:
    # `images bump` and `images diff` live with what they read (the project's Dockerfile, built images).
    from imagesmith.builder.diff_cli import diff_command
    from imagesmith.templating.cli import bump_command

    images.add_command(bump_command)
    images.add_command(diff_command)


_register_project_side()
