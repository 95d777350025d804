"""``imagesmith build``: a thin translator from flags onto the build runner."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click

from imagesmith.contract import paths, plan_json
from imagesmith.errors import NegativeAnswer, UnknownName, UsageError


def _base_images(values: tuple[str, ...], os_names: list[str]) -> tuple[tuple[str, str], ...]:
    pairs: list[tuple[str, str]] = []
    for value in values:
        name, sep, ref = value.partition("=")
        if not sep or not name or not ref:
            raise UsageError(
                "expected NAME=REF (e.g. bookworm=registry.local/debian:bookworm)",
                where=f"--base-image {value}",
            )
        if name != "os" and name not in os_names:
            import difflib

            raise UnknownName(
                "OS base", name, difflib.get_close_matches(name, [*os_names, "os"], n=3), where="--base-image"
            )
        pairs.append((name, ref))
    return tuple(pairs)


def _mirrored(loaded: plan_json.Plan, mirror: str | None) -> tuple[tuple[str, str], ...]:
    """``--base-image`` pairs sending each Docker Hub OS base through ``mirror`` (later --base-image win)."""
    from imagesmith.contract.tags import ImageRef

    prefix = (mirror or "").strip().rstrip("/")
    if not prefix:
        return ()
    if "://" in prefix or " " in prefix:
        raise UsageError(
            "expected a registry host and path, like mirror.example.com/dockerhub",
            where=f"--os-base-mirror {mirror}",
        )
    pairs: dict[str, str] = {}
    for image in loaded.images:
        if image.base.kind != "os" or not image.base.ref:
            continue
        ref = ImageRef.parse(image.base.ref)
        if ref.registry not in (None, "docker.io", "index.docker.io", "registry-1.docker.io"):
            continue  # not a Docker Hub image: the mirror does not hold it
        path = ref.path if "/" in ref.path else f"library/{ref.path}"
        pairs[image.base.name] = str(ImageRef(repository=f"{prefix}/{path}", tag=ref.tag, digest=ref.digest))
    return tuple(pairs.items())


@click.command("build")
@click.argument("images", nargs=-1)
@click.option(
    "--plan",
    "plan_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=Path(paths.PLAN_JSON),
    show_default=True,
    help="plan.json written by `imagesmith images render`.",
)
@click.option(
    "--jobs", "-j", type=click.IntRange(min=1), default=2, show_default=True, help="Images built at once."
)
@click.option("--no-cache", is_flag=True, help="Rebuild every image from scratch, ignoring unchanged ones.")
@click.option(
    "--push",
    is_flag=True,
    help="Push each image's tag and aliases after its tests pass; an immutable tag is never moved.",
)
@click.option(
    "--parents-from-registry",
    is_flag=True,
    help="Build only IMAGE...; each parent is pulled by digest from the registry, never rebuilt or pushed.",
)
@click.option(
    "--sizes/--no-sizes",
    default=True,
    show_default=True,
    help="Measure compressed sizes (a gzip pass over new layers; with --push they come from the registry).",
)
@click.option(
    "--output-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("imagesmith-build"),
    show_default=True,
    help="Where manifest.json, manifest.md and logs/<image>.log go.",
)
@click.option(
    "--base-image",
    "base_images",
    multiple=True,
    metavar="NAME=REF",
    help="Use REF for the OS base NAME (the plan's from.name, or 'os' for all): a mirror or a local image.",
)
@click.option(
    "--os-base-mirror",
    metavar="PREFIX",
    envvar="IMAGESMITH_OS_BASE_MIRROR",
    help="Pull Docker Hub OS bases through this registry mirror (docker.io/library/debian -> "
    "PREFIX/library/debian); env IMAGESMITH_OS_BASE_MIRROR.",
)
@click.option(
    "--pip-index-url",
    metavar="URL",
    envvar="PIP_INDEX_URL",
    help="Python package index used inside the builds (env PIP_INDEX_URL).",
)
@click.option(
    "--ca-cert",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="IMAGESMITH_CA_CERT",
    help="PEM CA bundle for a TLS-intercepting proxy; used during the build only, never stored in an image "
    "(env IMAGESMITH_CA_CERT).",
)
@click.option(
    "--imagesmith-wheel",
    type=click.Path(path_type=Path, dir_okay=False),
    help="The imagesmith wheel the base images install (default: the release the policy pins, from the "
    "package index; a source checkout of that release builds its own).",
)
def build(
    images: tuple[str, ...],
    plan_path: Path,
    jobs: int,
    no_cache: bool,
    push: bool,
    parents_from_registry: bool,
    sizes: bool,
    output_dir: Path,
    base_images: tuple[str, ...],
    os_base_mirror: str | None,
    pip_index_url: str | None,
    ca_cert: Path | None,
    imagesmith_wheel: Path | None,
) -> int:
    """Build IMAGE... (default: every planned image) and their ancestors, parents first.

    Unchanged images are recognised by their input-hash label and skipped; each built image is
    smoke-tested before it is tagged. Exit 1 when any image failed.
    """
    from rich.console import Console

    from imagesmith.builder import engine, manifest, runner, schedule
    from imagesmith.builder.certserve import read_pem
    from imagesmith.builder.model import FAILED, BuildOptions
    from imagesmith.builder.progress import Progress, summary
    from imagesmith.contract import plan_json as plan

    loaded = plan.load(plan_path)
    if parents_from_registry and not images:
        raise UsageError("name the IMAGE(s) to build", where="--parents-from-registry")
    selected = schedule.select(
        {i.name: i.parent for i in loaded.images}, images, ancestors=not parents_from_registry
    )
    os_names = sorted({i.base.name for i in loaded.images if i.base.kind == "os"})
    options = BuildOptions(
        plan=loaded,
        selected=selected,
        jobs=jobs,
        no_cache=no_cache,
        push=push,
        parents_from_registry=parents_from_registry,
        measure_sizes=sizes,
        output_dir=output_dir,
        base_images=_mirrored(loaded, os_base_mirror) + _base_images(base_images, os_names),
        pip_index_url=pip_index_url or None,
        ca_cert=read_pem(ca_cert) if ca_cert is not None else None,
        imagesmith_wheel=imagesmith_wheel,
    )
    if imagesmith_wheel is not None and not imagesmith_wheel.is_file():
        raise UsageError("no such wheel file", where=f"--imagesmith-wheel {imagesmith_wheel}")
    client = engine.connect()
    started = datetime.now(UTC)
    console = Console(stderr=True)
    with Progress(console, selected) as progress:
        results = runner.build(options, progress, client)
    out = Console()
    if not out.is_terminal:
        out = Console(width=200)  # logs and pipes: keep the table rows unwrapped
    summary(out, results, str(output_dir))
    manifest.write(output_dir, results, plan=plan_path, engine=engine.engine_address(), started=started)
    failed = [r for r in results if r.status == FAILED]
    if failed:
        first = failed[0]
        raise NegativeAnswer(
            f"{len(failed)} of {len(results)} images failed: "
            + ", ".join(f"{r.name} ({r.failed_step or r.error})" for r in failed),
            hint=f"logs in {first.log_path.parent}",
        )
    return 0
