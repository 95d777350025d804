"""`make demo`: the main job end to end on the embedded default policy, for real, saying what it does.

1. validate the sourced compatibility data;
2. answer a few "will this run?" questions a platform team asks every week;
3. plan the curated image set for the default fleet (with the reasons for what was left out);
4. create a team's platform repository in build/demo/team with `imagesmith init` (policy pinned to this
   imagesmith, project templates, CI), lock its PyPI-default torch runtime (uv, with hashes) and render
   the Dockerfiles, plan.json, the CI workflows and the bake file there;
5. show that the example team repository (examples/team/) matches what its policy renders;
6. set up a Docker engine as `make test` does (dockerd started when none answers, the OS base from
   debootstrap) and build the base image and the PyPI-default torch runtime image for real (a 5 GB
   CUDA 13 image from PyPI), smoke-tested inside (doctor, labels, the framework's own CUDA/cuDNN);
7. run the doctor inside the built image and print the build manifest.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the engine harness lives with the tests: one way to get an engine
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")
EXE = str(Path(sys.executable).with_name("imagesmith"))
OUT = REPO / "build" / "demo"
PYPI_TORCH = "torch-2.13.0-cu130-py3.11-bookworm-runtime"  # what a plain `pip install torch==2.13.0` gets


TEAM = OUT / "team"
EXAMPLE = REPO / "examples" / "team"


def step(title: str, *args: str, allow: tuple[int, ...] = (0,), cwd: Path = REPO) -> None:
    where = "" if cwd == REPO else f"(in {cwd.relative_to(REPO)}) "
    print(f"\n== {title}\n{where}$ imagesmith {' '.join(args)}", flush=True)
    code = subprocess.run([EXE, *args], cwd=cwd).returncode
    if code not in allow:
        print(f"demo: step failed with exit code {code}", file=sys.stderr)
        sys.exit(code)


def main() -> int:
    step("Validate the compatibility data (every row sourced, file:line on errors)", "matrix", "validate")
    step(
        "A CUDA 12.4 wheel on an R535 node: runs through minor-version compatibility",
        "matrix",
        "check",
        "--framework",
        "torch==2.4.1+cu124",
        "--driver",
        "535.104.05",
        "--gpu",
        "H100",
    )
    step(
        "Plain `pip install torch` 2.11 on an R570 node: the PyPI default moved to CUDA 13",
        "matrix",
        "check",
        "--framework",
        "torch==2.11.0",
        "--driver",
        "570.133.20",
        "--gpu",
        "A100-80GB",
        allow=(1,),
    )
    step(
        "What runs on a V100 with R535?",
        "matrix",
        "options",
        "--driver",
        "535.247.01",
        "--gpu",
        "V100",
        "--framework",
        "torch",
    )
    step("Plan the curated images for the default fleet", "images", "plan", "--explain")
    ca = ["--ca-cert", str(HOST_CA)] if HOST_CA.is_file() else []
    import shutil

    shutil.rmtree(TEAM, ignore_errors=True)
    step(
        "Create the team's platform repository (non-interactive answers)",
        "init",
        str(TEAM.relative_to(REPO)),
        "--team-name",
        "Demo",
        "--registry",
        "ghcr.io/acme/ml",
        "--framework",
        "torch~=2.13.0",
    )
    # Lock what the demo builds (uv resolves it against PyPI, with hashes; the base's lock comes with it);
    # the PyTorch-index (cu126) images cannot be locked without download.pytorch.org, so the render
    # below allows them unlocked and names them.
    step("Lock the PyPI-default torch runtime", "images", "lock", *ca, PYPI_TORCH, cwd=TEAM)
    step("Render the plan with its locks", "images", "render", "--allow-unlocked", cwd=TEAM)
    step(
        "Check the example team repository matches its policy and locks",
        "images",
        "render",
        "--check",
        "--allow-unlocked",
        cwd=EXAMPLE,
    )
    return build_for_real()


def runtime_image() -> dict[str, object]:
    """The PyPI-default torch runtime of the plan: the one a plain `pip install torch` gives."""
    plan = json.loads((TEAM / "base_images" / "plan.json").read_text(encoding="utf-8"))
    for image in plan["images"]:
        framework = image.get("framework") or {}
        dockerfile = (TEAM / "base_images" / image["dockerfile"]).read_text(encoding="utf-8")
        pypi_default = "--extra-index-url" not in dockerfile  # other builds need the PyTorch index
        if image.get("variant") == "runtime" and framework.get("name") == "torch" and pypi_default:
            return dict(image)
    raise SystemExit("demo: the default plan has no PyPI-default torch runtime image")


def build_for_real() -> int:
    from tests import docker_harness

    print("\n== Set up the Docker engine (as `make test` does) and the debootstrapped OS base", flush=True)
    try:
        engine = docker_harness.engine()
        os_base = docker_harness.os_base(engine.client)
    except docker_harness.NoEngine as exc:
        print(f"demo: no Docker engine can be had here: {exc}", file=sys.stderr)
        return 3
    try:
        image = runtime_image()
        base = str(image["parent"])
        args = ["build", base, str(image["name"]), "--plan", str(TEAM / "base_images" / "plan.json")]
        args += ["--base-image", f"bookworm={os_base}", "--output-dir", str(OUT / "images"), "--no-sizes"]
        if HOST_CA.is_file():  # a TLS-intercepting proxy's CA, served to the build only
            args += ["--ca-cert", str(HOST_CA)]
        step("Build the base image and the torch runtime image, smoke-tested inside", *args)
        print("\n== The doctor inside the built image (this machine has no GPU: it says so)", flush=True)
        code = subprocess.run(
            ["docker", "run", "--rm", "--network", "none", str(image["tag"]), "imagesmith", "doctor"],
            env={**os.environ, "DOCKER_HOST": engine.host},
        ).returncode
        print(f"(doctor exit code {code}: 0 healthy, 1 findings)")
        print("\n== The build manifest", flush=True)
        print((OUT / "images" / "manifest.md").read_text(encoding="utf-8"))
    finally:
        engine.stop()
    print(
        f"demo: done. The team repository is {TEAM.relative_to(REPO)}/, the build manifest {OUT.relative_to(REPO)}/images/."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
