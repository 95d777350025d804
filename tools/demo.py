"""`make demo`: the main job end to end on the embedded default policy, saying what it does at each step.

1. validate the sourced compatibility data;
2. answer a few "will this run?" questions a platform team asks every week;
3. plan the curated image set for the default fleet (with the reasons for what was left out);
4. render the Dockerfiles, plan.json, the CI workflow and the bake file into build/demo/;
5. show that the committed base_images/ and ci/ match what the policy renders.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXE = str(Path(sys.executable).with_name("imagesmith"))
OUT = REPO / "build" / "demo"


def step(title: str, *args: str, allow: tuple[int, ...] = (0,)) -> None:
    print(f"\n== {title}\n$ imagesmith {' '.join(args)}", flush=True)
    code = subprocess.run([EXE, *args], cwd=REPO).returncode
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
    step("Render them", "images", "render", "--output-dir", str(OUT))
    step("Check the committed files match the policy", "images", "render", "--check")
    print(f"\ndemo: done. Rendered files are in {OUT.relative_to(REPO)}/ (base_images/, ci/).")
    print("demo: next, on a machine with a Docker engine: `imagesmith build --output-dir build/images`.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
