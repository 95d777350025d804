"""``imagesmith init`` and ``imagesmith upgrade``: thin translators onto ``team.init`` and ``team.upgrade``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from imagesmith.errors import EXIT_OK, NegativeAnswer, UsageError

if TYPE_CHECKING:
    from imagesmith.team.init import FleetEntry


def _ask(value: str | None, prompt: str, default: str) -> str:
    """A flag's value; asked at the terminal when missing, else the default (CI, scripts)."""
    if value is not None:
        return value
    if sys.stdin.isatty():
        return str(click.prompt(prompt, default=default))
    return default


@click.command("init")
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False))
@click.option("--team-name", help="The team's name, for the README (default: ML platform).")
@click.option("--registry", help="Registry/namespace of the curated images (default: ghcr.io/acme/ml).")
@click.option("--maintainer", help="Maintainer label of the images (default: ML platform team <...>).")
@click.option("--vendor", help="Vendor label of the images (default: the last part of the registry).")
@click.option("--python", "pythons", multiple=True, metavar="X.Y", help="A Python to build for (repeat).")
@click.option(
    "--framework",
    "frameworks",
    multiple=True,
    metavar="SPEC",
    help="A framework line, like torch~=2.13.0, 'jax>=0.10,<0.11' or cuda==12.9 (repeat).",
)
@click.option(
    "--variant",
    "variants",
    multiple=True,
    type=click.Choice(["runtime", "devel"]),
    help="Image variants to build (repeat; default: runtime and devel).",
)
@click.option(
    "--node",
    "nodes",
    multiple=True,
    metavar="name=N,driver=V,gpu=G[,count=C]",
    help="A fleet node type (repeat).",
)
@click.option(
    "--nodes",
    "nodes_file",
    type=click.Path(dir_okay=False, exists=True),
    help="The fleet from `kubectl get nodes -o json` output (GPU Feature Discovery labels).",
)
@click.option("--from-cluster", is_flag=True, help="The fleet from the cluster's nodes (kubeconfig).")
@click.option("--kubeconfig", type=click.Path(dir_okay=False), help="With --from-cluster.")
@click.option("--context", help="kubeconfig context, with --from-cluster.")
@click.option(
    "--adopt",
    is_flag=True,
    help="DIRECTORY holds an imagesmith.yaml already: keep it (pinned to this imagesmith) and add the rest.",
)
def init_command(
    directory: Path,
    team_name: str | None,
    registry: str | None,
    maintainer: str | None,
    vendor: str | None,
    pythons: tuple[str, ...],
    frameworks: tuple[str, ...],
    variants: tuple[str, ...],
    nodes: tuple[str, ...],
    nodes_file: str | None,
    from_cluster: bool,
    kubeconfig: str | None,
    context: str | None,
    adopt: bool,
) -> int:
    """Create the team's platform repository in DIRECTORY: policy, project templates, CI, README.

    Everything comes from this installed imagesmith; the repository holds no imagesmith source. Refuses a
    non-empty DIRECTORY unless --adopt.
    """
    from imagesmith.team import init

    given = [bool(nodes), nodes_file is not None, from_cluster]
    if sum(given) > 1:
        raise UsageError(
            "give the fleet one way: --node, --nodes FILE or --from-cluster", where="--node/--nodes"
        )
    policy_flags = [
        registry,
        maintainer,
        vendor,
        *pythons,
        *frameworks,
        *nodes,
        nodes_file,
        from_cluster or None,
    ]
    if adopt and any(v for v in policy_flags):
        raise UsageError(
            "--adopt keeps the existing imagesmith.yaml: edit it instead of passing policy flags",
            where="--adopt",
        )
    init.check_directory(directory, adopt=adopt)  # before any question is asked
    registry_value = _ask(registry, "Registry/namespace for the curated images", "ghcr.io/acme/ml").rstrip(
        "/"
    )
    options = init.InitOptions(
        directory=directory,
        team_name=_ask(team_name, "Team name", "ML platform"),
        registry=registry_value,
        maintainer=_ask(maintainer, "Maintainer", "ML platform team <ml-platform@example.com>"),
        vendor=vendor or registry_value.rsplit("/", 1)[-1],
        pythons=pythons or ("3.11",),
        frameworks=tuple(init.parse_framework(f) for f in frameworks) or (("torch", "~=2.13.0"),),
        fleet=_fleet(nodes, nodes_file, from_cluster, kubeconfig, context),
        variants=variants or ("runtime", "devel"),
        adopt=adopt,
    )
    result = init.run_init(options)
    click.echo(f"created the team repository in {directory}/: {', '.join(result.written)}")
    if result.uncovered:
        for line in result.uncovered:
            click.echo(f"  NOT COVERED: {line}")
        raise NegativeAnswer(
            f"the plan leaves {len(result.uncovered)} fleet node x framework line pair(s) without an image; "
            "nothing rendered",
            where=str(directory / "imagesmith.yaml"),
            hint="change the fleet or the framework lines, then run `imagesmith images render`",
        )
    click.echo(f"rendered {result.rendered} files (base_images/, .github/workflows/, docker-bake.json)")
    click.echo("next:")
    click.echo(f"  cd {directory}")
    click.echo("  imagesmith images plan --explain   # the image set, and why")
    click.echo("  imagesmith images lock && imagesmith images render   # pin every package, with hashes")
    click.echo('  git init -b main && git add -A && git commit -m "Team repository from imagesmith init"')
    return EXIT_OK


def _fleet(
    nodes: tuple[str, ...],
    nodes_file: str | None,
    from_cluster: bool,
    kubeconfig: str | None,
    context: str | None,
) -> tuple[FleetEntry, ...]:
    from imagesmith.team import init as init_mod

    if nodes:
        return tuple(init_mod.parse_node(n) for n in nodes)
    if nodes_file is None and not from_cluster:
        import yaml

        from imagesmith.images.policy import default_policy_text

        default = yaml.safe_load(default_policy_text())["fleet"]
        return tuple(
            init_mod.FleetEntry(
                name=n["name"], driver=str(n["driver"]), gpu=n["gpu"], count=n.get("count", 1)
            )
            for n in default
        )
    # The fleet as GPU Feature Discovery labels tell it, through the fleet commands' own reading.
    from imagesmith.fleet import cluster, policy
    from imagesmith.fleet.gfd import nodes_of
    from imagesmith.matrix import knowledge

    source = (
        cluster.ClusterSource(nodes_file=nodes_file, pods_file=None)
        if nodes_file is not None
        else cluster.ClusterSource(kubeconfig=kubeconfig, context=context, in_cluster=False)
    )
    derived = policy.derive(knowledge.load(), nodes_of(cluster.read_nodes(source)))
    if not derived.pools:
        raise UsageError(
            "no GPU node with driver and GPU labels (GPU Feature Discovery) found",
            where=nodes_file or "--from-cluster",
        )
    return tuple(
        init_mod.FleetEntry(name=p.name, driver=str(p.driver), gpu=p.gpu, count=p.count)
        for p in derived.pools
    )


@click.command("upgrade")
@click.option(
    "--check",
    is_flag=True,
    help="Write nothing; print what would change and exit 1 if anything would (for CI).",
)
@click.option(
    "--dir",
    "root",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    default=Path(),
    help="The team's repository (default: the current directory).",
)
def upgrade_command(check: bool, root: Path) -> int:
    """Move the team's repository to this imagesmith: the pin and release, the team-repository template's
    files (copier's update: your edits kept, conflicts marked inline), the re-planned images.

    Prints what changes before writing anything: images added and removed, tags that move, each fleet node's
    coverage before and after, project-template files that change.
    """
    from imagesmith.team import upgrade

    root = root.resolve()
    if not check:
        upgrade.check_clean(root)  # before anything is prepared or printed as if it would happen
    report, new_text = upgrade.plan_upgrade(root)
    for line in report.lines():
        click.echo(line)
    if check:
        if report.changes:
            raise NegativeAnswer(
                f"an upgrade to imagesmith {report.new_version} would change this repository",
                where=str(root / "imagesmith.yaml"),
                hint="run `imagesmith upgrade`",
            )
        click.echo(f"up to date with imagesmith {report.new_version}")
        return EXIT_OK
    if not report.changes:
        click.echo(f"up to date with imagesmith {report.new_version}; nothing written")
        return EXIT_OK
    applied = upgrade.apply(report, new_text)
    click.echo(f"upgraded to imagesmith {report.new_version}: {applied.rendered} rendered files")
    for name in applied.conflicts:
        click.echo(f"  CONFLICT (inline markers): {name}")
    if applied.unlocked:
        click.echo(f"  not locked: {', '.join(applied.unlocked)} (run `imagesmith images lock`)")
    click.echo("next: review `git diff`, commit, and tag a template release (git tag vN) for the projects")
    return EXIT_OK
