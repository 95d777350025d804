"""The click face of ``imagesmith doctor``, only so that ``imagesmith --help`` lists it.

``imagesmith/__main__.py`` dispatches ``doctor`` before click is imported, so this forwards raw
arguments to the argparse CLI when the click group is used directly.
"""

from __future__ import annotations

import click


@click.command(
    "doctor",
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []},
    add_help_option=False,
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def doctor_command(args: tuple[str, ...]) -> int:
    """Explain how libcuda/libcudart are found in this pod."""
    from imagesmith.doctor.cli import main

    return main(list(args))
