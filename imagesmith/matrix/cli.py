"""``imagesmith matrix``: a thin translator from flags to the rules and back to text or JSON."""

from __future__ import annotations

import json
from typing import Any

import click
from packaging.version import Version

from imagesmith.errors import EXIT_NEGATIVE, EXIT_OK
from imagesmith.matrix import knowledge, rules, spec
from imagesmith.matrix.answer import parse_driver
from imagesmith.matrix.knowledge import FRAMEWORKS


@click.group()
def matrix() -> None:
    """Query the sourced CUDA / driver / GPU / framework compatibility data."""


@matrix.command()
@click.option(
    "--framework",
    "framework_spec",
    required=True,
    help="torch==2.4.1+cu124, torch==2.11.0 (PyPI default), tensorflow==2.16.1, jax==0.7.2+cuda13",
)
@click.option("--driver", required=True, help="Node driver version, e.g. 535.104.05")
@click.option(
    "--gpu",
    required=True,
    help='GPU name or alias ("H100", "A100-80GB", "RTX 4090") or capability ("sm_90", "9.0")',
)
@click.option("--compat-package", default=None, help="cuda-compat package installed in the image, e.g. 12-8")
@click.option("--json", "as_json", is_flag=True, help="Print the schema-1 JSON answer.")
def check(framework_spec: str, driver: str, gpu: str, compat_package: str | None, as_json: bool) -> int:
    """Will FRAMEWORK run on a node with DRIVER and GPU? Exit 0 works, 1 fails, 2 unknown input."""
    from imagesmith.matrix import answer

    result = answer.check(
        framework_spec=framework_spec, driver=driver, gpu=gpu, compat_package=compat_package, as_json=as_json
    )
    click.echo(result.text)
    return EXIT_OK if result.ok else EXIT_NEGATIVE


@matrix.command()
@click.option("--driver", required=True, help="Node driver version, e.g. 535.104.05")
@click.option("--gpu", required=True, help="GPU name, alias or compute capability")
@click.option(
    "--framework", "framework_name", type=click.Choice(FRAMEWORKS), default=None, help="Only this framework."
)
@click.option("--compat-package", default=None, help="cuda-compat package available in the image, e.g. 12-8")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def options(
    driver: str, gpu: str, framework_name: str | None, compat_package: str | None, as_json: bool
) -> int:
    """List the framework builds that work on DRIVER + GPU, newest first."""
    kb = knowledge.load()
    drv = parse_driver(driver)
    node_gpu = kb.find_gpu(gpu)
    compat = kb.find_compat_package(compat_package).cuda if compat_package else None
    rows: list[dict[str, Any]] = []
    for framework in [framework_name] if framework_name else list(FRAMEWORKS):
        releases = sorted(kb.releases(framework), key=lambda r: Version(r.version), reverse=True)
        for release in releases:
            builds = [b for b in kb.builds(framework) if b.release == release.version]
            for build in sorted(builds, key=lambda b: b.cuda, reverse=True):
                verdict = rules.evaluate(
                    kb,
                    cuda=build.cuda,
                    sass=build.sass,
                    ptx=build.ptx,
                    driver=drv,
                    gpu=node_gpu,
                    compat_cuda=compat,
                )
                if not verdict.ok:
                    continue
                rows.append(
                    {
                        "spec": f"{framework}=={spec.latest_version(release)}+{build.variant}",
                        "framework": framework,
                        "verdict": verdict.verdict,
                        "cuda": str(build.cuda),
                        "pypi_default": release.pypi_default == build.variant,
                        "caveats": [r.code for r in verdict.reasons if r.severity == "caveat"],
                    }
                )
    if as_json:
        click.echo(
            json.dumps({"schema": 1, "driver": str(drv), "gpu": node_gpu.name, "options": rows}, indent=2)
        )
    else:
        click.echo(f"{len(rows)} builds run on {node_gpu.name} (sm {node_gpu.capability}) with driver {drv}:")
        for row in rows:
            flags = (" [PyPI default]" if row["pypi_default"] else "") + (
                f" caveats: {', '.join(row['caveats'])}" if row["caveats"] else ""
            )
            click.echo(f"  {row['spec']:<34} CUDA {row['cuda']:<7} {row['verdict']}{flags}")
    return EXIT_OK if rows else EXIT_NEGATIVE


@matrix.command()
def validate() -> int:
    """Load and cross-check every data file; report the first problem as file:line."""
    kb = knowledge.load()
    click.echo(f"ok: {kb.summary()}")
    return EXIT_OK
