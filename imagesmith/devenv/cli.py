"""``imagesmith dev up|down|status|logs|render``: the project's dev environment, locally or on a remote target."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import click

from imagesmith.errors import EnvironmentProblem

TARGETS = ("local", "k8s", "sky")

BUILT_HELP = (
    "k8s/sky: judge the dev image's own labels, read from its registry without pulling (after `dev push`), "
    "instead of the plan's description of the image the dev stage builds on."
)
CA_CERT_HELP = (
    "PEM of a TLS-intercepting proxy or private index, served to the build only (never in a layer)."
)


def _remote(target: str, *, apply: bool, built: bool = False) -> int:
    # ---- HOOK for the remote targets (issue 15 items 3 and 4): imagesmith.devenv.remote.up -----------------
    # `dev up --target k8s|sky` and `dev render` hand over to remote.up(project_dir, target, apply=...), which
    # renders (and, with apply, applies) the spec after the gate; whatever it returns is printed as is.
    from imagesmith.devenv.local import find_project

    project = find_project(Path.cwd())
    try:
        remote = importlib.import_module("imagesmith.devenv.remote")
    except ImportError:
        raise EnvironmentProblem(
            f"the {target} target is not available in this imagesmith (imagesmith.devenv.remote is missing)"
        ) from None
    answer = remote.up(project.root, target, apply=apply, built=built)
    if answer is not None:
        click.echo(str(answer))
    return 0


# Subcommands written in other modules of this package, loaded only when invoked (the remote gate).
LAZY = {"gate": ("imagesmith.devenv.gate_cli", "gate_command")}


class DevGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in LAZY and cmd_name not in self.commands:
            module, attr = LAZY[cmd_name]
            try:
                command = getattr(importlib.import_module(module), attr)
            except (ImportError, AttributeError):
                return None
            assert isinstance(command, click.Command)
            return command
        return super().get_command(ctx, cmd_name)


@click.group("dev", cls=DevGroup)
def dev() -> None:
    """The project's dev environment: JupyterLab in its own curated image, on the local engine.

    Run inside a generated project (the folder with .copier-answers.yml).
    """


@dev.command("up")
@click.option(
    "--target",
    type=click.Choice(TARGETS),
    default="local",
    show_default=True,
    help="local: this Docker engine; k8s, sky: print the rendered remote spec (applied with --apply).",
)
@click.option(
    "--apply", is_flag=True, help="k8s/sky: apply the spec when the tool is installed and configured."
)
@click.option("--built", is_flag=True, help=BUILT_HELP)
@click.option("--ca-cert", type=click.Path(exists=True, dir_okay=False, path_type=Path), help=CA_CERT_HELP)
@click.option(
    "--timeout", type=float, default=180.0, show_default=True, help="Seconds to wait for JupyterLab."
)
@click.option("--verbose", "-v", is_flag=True, help="Show the build's output.")
def up_command(
    target: str, apply: bool, built: bool, ca_cert: Path | None, timeout: float, verbose: bool
) -> int:
    """Build the dev image (docker build --target dev), start it and print JupyterLab's URL.

    The project is mounted at its path in the image, the home (/home/app) is a named volume, GPUs are
    requested when the engine has the NVIDIA runtime. A second `up` reuses the running container.
    """
    if target != "local":
        return _remote(target, apply=apply, built=built)
    from imagesmith.builder.certserve import read_pem
    from imagesmith.devenv import local

    project = local.find_project(Path.cwd())
    pem = read_pem(ca_cert) if ca_cert is not None else None
    echo = lambda line: click.echo(line, err=True)  # noqa: E731
    result = local.up(
        project, ca_cert=pem, timeout=timeout, log=echo if verbose else print_nothing, progress=echo
    )
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
    verb = "already running" if result.reused else f"ready in {result.seconds:.1f} s"
    click.echo(f"{result.container}: JupyterLab {verb} (home volume {result.volume})")
    click.echo(result.url)
    return 0


def print_nothing(_line: str) -> None:
    return None


@dev.command("render")
@click.option("--target", type=click.Choice(TARGETS[1:]), required=True, help="The remote target to render.")
@click.option("--built", is_flag=True, help=BUILT_HELP)
def render_command(target: str, built: bool) -> int:
    """Print the rendered remote spec for TARGET without applying it."""
    return _remote(target, apply=False, built=built)


@dev.command("push")
@click.option("--ca-cert", type=click.Path(exists=True, dir_okay=False, path_type=Path), help=CA_CERT_HELP)
@click.option("--verbose", "-v", is_flag=True, help="Show the build's and the push's output.")
def push_command(ca_cert: Path | None, verbose: bool) -> int:
    """Build the dev image and push it as <image_registry>/<slug>-dev:<version>, what deploy/dev/ pulls.

    Uses the engine's credentials (docker login). Then `imagesmith dev up --target k8s|sky --built` judges the
    pushed image itself before anything starts.
    """
    from imagesmith.builder.certserve import read_pem
    from imagesmith.devenv import local

    project = local.find_project(Path.cwd())
    pem = read_pem(ca_cert) if ca_cert is not None else None
    echo = lambda line: click.echo(line, err=True)  # noqa: E731
    pushed = local.push(project, ca_cert=pem, log=echo if verbose else print_nothing, progress=echo)
    click.echo(f"pushed {pushed.ref}" + (f"@{pushed.digest}" if pushed.digest else ""))
    click.echo("next: imagesmith dev up --target k8s|sky --built (the gate reads the pushed image's labels)")
    return 0


@dev.command("down")
@click.option(
    "--purge", is_flag=True, help="Also remove the home volume (your files in /home/app), without asking."
)
def down_command(purge: bool) -> int:
    """Stop and remove the dev container; the home volume is kept unless --purge."""
    from imagesmith.devenv import local

    project = local.find_project(Path.cwd())
    removed = local.down(project, purge=purge)
    click.echo(f"removed: {', '.join(removed)}" if removed else f"nothing to remove for {project.slug}")
    if not purge:
        click.echo(f"kept: volume {project.volume} (remove it with `imagesmith dev down --purge`)")
    return 0


@dev.command("status")
@click.option("--no-doctor", is_flag=True, help="Skip `imagesmith doctor` inside the container.")
def status_command(no_doctor: bool) -> int:
    """What runs, where (container, image, port), since when, and the doctor's verdict inside it."""
    from imagesmith.devenv import local

    project = local.find_project(Path.cwd())
    state = local.status(project, doctor=not no_doctor)
    if state.state == "absent":
        click.echo(f"{state.container}: not running (start it with `imagesmith dev up`)")
        return 1
    image = (state.image_id or "?").removeprefix("sha256:")[:12]
    click.echo(
        f"{state.container}: {state.state} since {state.started_at}, image {image}, volume {state.volume}"
    )
    if state.url:
        click.echo(f"url: {state.url}")
    click.echo(f"gpus: {'requested' if state.gpus else 'none'}")
    if state.doctor is not None:
        click.echo(f"doctor: {state.doctor}")
    return 0 if state.state == "running" else 1


@dev.command("logs")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new lines until interrupted.")
@click.option("--tail", default="all", show_default=True, help="Number of lines from the end, or 'all'.")
def logs_command(follow: bool, tail: str) -> int:
    """Print the dev container's logs."""
    from imagesmith.devenv import local

    project = local.find_project(Path.cwd())
    count: int | str = int(tail) if tail.isdigit() else "all"
    out = sys.stdout.buffer
    try:
        for chunk in local.logs(project, follow=follow, tail=count):
            out.write(chunk)
            out.flush()
    except KeyboardInterrupt:
        pass
    return 0
