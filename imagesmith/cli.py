"""The click command tree: a thin translator onto the typed core.

Subcommands live in their capability's package and are imported only when invoked, so
``imagesmith --version`` stays cheap (no docker, jinja2, copier or rich).
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from imagesmith import __version__
from imagesmith.errors import EXIT_BAD_INPUT, ImagesmithError

# name -> ("module:attribute", one-line help shown by `imagesmith --help`)
COMMANDS: dict[str, tuple[str, str]] = {
    "init": (
        "imagesmith.team.cli:init_command",
        "Create the team's platform repository (policy, templates, CI).",
    ),
    "upgrade": (
        "imagesmith.team.cli:upgrade_command",
        "Move the team's repository to this imagesmith: templates, pin, re-planned images.",
    ),
    "matrix": ("imagesmith.matrix.cli:matrix", "Answer 'will this framework build run on this node?'."),
    "images": ("imagesmith.images.cli:images", "Plan and render the curated base images from the policy."),
    "build": ("imagesmith.builder.cli:build", "Build the curated images on the local Docker engine."),
    "doctor": (
        "imagesmith.doctor.click_command:doctor_command",
        "Explain how libcuda/libcudart are found in this pod.",
    ),
    "instances": ("imagesmith.picker.cli:instances", "Inspect and regenerate the instance catalog."),
    "pick": ("imagesmith.picker.cli:pick", "Choose the cheapest instance that fits a workload."),
    "fleet": (
        "imagesmith.fleet.cli:fleet",
        "Judge the images running on a Kubernetes fleet; driver-upgrade impact.",
    ),
    "webhook": ("imagesmith.fleet.webhook_cli:webhook", "Admission webhook: refuse images no node can run."),
    "dev": (
        "imagesmith.devenv.cli:dev",
        "The project's dev environment: JupyterLab in its own image (up/down/status).",
    ),
}
# Commands that join a group from a package above it: the harvest reads artifacts (an index, wheels,
# fatbins) and lives in its own package, which the matrix (the ground) must not import.
JOINS: dict[str, tuple[str, ...]] = {"matrix": ("imagesmith.harvest.cli:harvest_command",)}


def _load(target: str) -> click.Command:
    module_name, attr = target.split(":")
    command = getattr(importlib.import_module(module_name), attr)
    assert isinstance(command, click.Command)
    return command


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        command = _load(target[0])
        if isinstance(command, click.Group):
            for join in JOINS.get(cmd_name, ()):
                command.add_command(_load(join))
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Help text comes from the table so that `--help` does not import every subpackage.
        with formatter.section("Commands"):
            formatter.write_dl([(name, COMMANDS[name][1]) for name in self.list_commands(ctx)])


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="imagesmith")
def cli() -> None:
    """imagesmith: curated GPU base images, templates, a pod doctor and an instance picker.

    Shell completion: eval "$(_IMAGESMITH_COMPLETE=bash_source imagesmith)" (zsh_source, fish_source too).
    """


def run(args: list[str]) -> int:
    """Run the CLI and turn every known failure into one line on stderr plus its exit code."""
    try:
        result: Any = cli.main(args=args, prog_name="imagesmith", standalone_mode=False)
    except ImagesmithError as exc:
        click.echo(f"imagesmith: error: {exc.one_line()}", err=True)
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("imagesmith: aborted", err=True)
        return 130
    except click.ClickException as exc:
        click.echo(f"imagesmith: error: {exc.format_message()}", err=True)
        return EXIT_BAD_INPUT if exc.exit_code == 2 else exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except BrokenPipeError:
        return 0
    return int(result) if isinstance(result, int) else 0


def main() -> None:
    sys.exit(run(sys.argv[1:]))
