"""The click face of ``imagesmith doctor``: ``imagesmith --help`` lists it and shell completion knows its
options (``--root`` completes directories, ``why`` files).

``imagesmith/__main__.py`` dispatches ``doctor`` before click is imported, so these commands only run
when the click group is used directly; they forward the same arguments to the standard-library CLI.
"""

from __future__ import annotations

import click


def _forward(args: list[str]) -> int:
    from imagesmith.doctor.cli import main

    return main(args)


@click.group("doctor", invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (schema 1) instead of text.")
@click.option(
    "--root", type=click.Path(file_okay=False), help="Inspect the filesystem under DIR (default /)."
)
@click.option("--strict", is_flag=True, help="Exit 1 on warnings too.")
@click.option("--image", help="Check an image's labels (registry, else local engine) against this node.")
@click.option(
    "--nfd-features",
    type=click.Path(dir_okay=False),
    help="Also write this node's verdict and facts to FILE as a Node Feature Discovery feature file.",
)
@click.option("--probe-timeout", type=float, help="Hard limit for the runtime probe subprocess (default 10).")
@click.option("--no-probe", is_flag=True, help="Do not load libcuda/NVML in a subprocess.")
@click.pass_context
def doctor_command(
    ctx: click.Context,
    as_json: bool,
    root: str | None,
    strict: bool,
    image: str | None,
    nfd_features: str | None,
    probe_timeout: float | None,
    no_probe: bool,
) -> int | None:
    """Explain how libcuda/libcudart are found in this pod."""
    if ctx.invoked_subcommand is not None:
        return None
    args = [
        *(["--json"] if as_json else []),
        *(["--strict"] if strict else []),
        *(["--no-probe"] if no_probe else []),
    ]
    args += [*(["--root", root] if root else []), *(["--image", image] if image else [])]
    args += ["--nfd-features", nfd_features] if nfd_features else []
    args += ["--probe-timeout", str(probe_timeout)] if probe_timeout is not None else []
    return _forward(args)


@doctor_command.command("why")
@click.argument("file", type=click.Path())
@click.option("--root", type=click.Path(file_okay=False), help="Resolve inside the filesystem under DIR.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (schema 1).")
def why_command(file: str, root: str | None, as_json: bool) -> int:
    """Explain FILE's whole dependency tree as ld.so resolves it."""
    return _forward(["why", file, *(["--root", root] if root else []), *(["--json"] if as_json else [])])


@doctor_command.command("manifest")
@click.option("--kind", type=click.Choice(["daemonset", "job"]), required=True, help="DaemonSet or Job.")
@click.option("--image", help="An image with imagesmith installed (default imagesmith:<version>).")
@click.option("--namespace", help="The namespace (default imagesmith).")
@click.option("--features-dir", type=click.Path(), help="NFD's features directory on the node.")
@click.option("--interval", help="How often the DaemonSet re-runs the doctor (default 10m).")
def manifest_command(
    kind: str, image: str | None, namespace: str | None, features_dir: str | None, interval: str | None
) -> int:
    """Print a DaemonSet/Job that labels GPU nodes with the doctor's verdict through NFD."""
    args = ["manifest", "--kind", kind]
    for flag, value in (
        ("--image", image),
        ("--namespace", namespace),
        ("--features-dir", features_dir),
        ("--interval", interval),
    ):
        args += [flag, value] if value else []
    return _forward(args)
