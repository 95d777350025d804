"""Smoke tests of a built image: pure verdicts over what the image answered.

The engine edge runs the commands (``imagesmith doctor --json``, a Python one-liner); these functions
only judge the output, so every verdict is tested without an engine.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from imagesmith.contract.labels import INPUT_HASH as HASH_LABEL
from imagesmith.contract.plan_json import Framework

DOCTOR_COMMAND = ["imagesmith", "doctor", "--json"]

# Lists installed distributions with the bytes their files take, without needing pip in the image.
INVENTORY_SCRIPT = r"""
import importlib.metadata as m, json, os
seen = {}
for d in m.distributions():
    name = d.metadata["Name"]
    if not name or name.lower() in seen:
        continue
    size = 0
    for f in d.files or ():
        try:
            size += os.lstat(d.locate_file(f)).st_size
        except OSError:
            pass
    seen[name.lower()] = {"name": name, "version": d.version, "size": size}
print(json.dumps(sorted(seen.values(), key=lambda p: p["name"].lower())))
"""


@dataclass(frozen=True, kw_only=True)
class TestResult:
    name: str
    ok: bool
    detail: str


def _version_matches(found: str, promised: str) -> bool:
    """``12.8.90`` keeps the promise ``12.8``; ``12.80`` or ``12`` do not."""
    want = promised.split(".")
    return found.split(".")[: len(want)] == want


def check_doctor(exit_code: int, stdout: str, stderr: str, cuda_runtime: str | None) -> TestResult:
    """The doctor ran, printed its JSON report, and found the libcudart the plan promised."""
    try:
        report = json.loads(stdout)
    except ValueError:
        tail = (stderr.strip().splitlines() or stdout.strip().splitlines() or ["no output"])[-1]
        return TestResult(name="doctor", ok=False, detail=f"no JSON from doctor (exit {exit_code}): {tail}")
    libraries = report.get("libraries") if isinstance(report, dict) else None
    if not isinstance(libraries, list):
        return TestResult(name="doctor", ok=False, detail="doctor JSON has no 'libraries' list")
    cudart = [
        entry
        for entry in libraries
        if isinstance(entry, dict) and str(entry.get("name", "")).startswith("libcudart")
    ]
    if cuda_runtime is None:
        return TestResult(name="doctor", ok=True, detail=f"doctor ran (exit {exit_code})")
    found = [f"{e.get('version')} at {e.get('path')}" for e in cudart]
    for entry in cudart:
        version = entry.get("version")
        if isinstance(version, str) and _version_matches(version, cuda_runtime):
            return TestResult(
                name="doctor",
                ok=True,
                detail=f"libcudart {version} at {entry.get('path')} ({entry.get('origin')})",
            )
    if not cudart:
        return TestResult(
            name="doctor", ok=False, detail=f"doctor found no libcudart; the plan promised {cuda_runtime}"
        )
    return TestResult(
        name="doctor",
        ok=False,
        detail=f"libcudart {', '.join(found)} does not match the planned CUDA runtime {cuda_runtime}",
    )


def check_labels(
    actual: Mapping[str, str], planned: Mapping[str, str], inherited: Mapping[str, str]
) -> TestResult:
    """Labels equal the plan; besides them only the input hash and labels inherited unchanged from the base."""
    problems: list[str] = []
    for key, value in sorted(planned.items()):
        if key not in actual:
            problems.append(f"{key} missing")
        elif actual[key] != value:
            problems.append(f"{key}={actual[key]!r}, planned {value!r}")
    for key, value in sorted(actual.items()):
        if key in planned or key == HASH_LABEL:
            continue
        if inherited.get(key) != value:
            problems.append(f"unplanned label {key}={value!r}")
    if problems:
        return TestResult(name="labels", ok=False, detail="; ".join(problems))
    return TestResult(name="labels", ok=True, detail=f"{len(planned)} planned labels present")


def framework_command(framework: Framework) -> list[str]:
    code = f"import {framework.import_name} as m; print(getattr(m, '__version__', ''))"
    return ["python3", "-c", code]


def check_framework(framework: Framework, exit_code: int, stdout: str, stderr: str) -> TestResult:
    if exit_code != 0:
        tail = (stderr.strip().splitlines() or ["no output"])[-1]
        return TestResult(
            name="framework-import", ok=False, detail=f"import {framework.import_name} failed: {tail}"
        )
    version = stdout.strip()
    # Local version labels (2.8.0+cu128) belong to the variant, not the release.
    if version.split("+")[0] != framework.version:
        return TestResult(
            name="framework-import",
            ok=False,
            detail=f"{framework.import_name}.__version__ is {version!r}, planned {framework.version}",
        )
    return TestResult(name="framework-import", ok=True, detail=f"import {framework.import_name} -> {version}")


def parse_inventory(stdout: str) -> tuple[dict[str, object], ...]:
    try:
        data = json.loads(stdout)
    except ValueError:
        return ()
    if not isinstance(data, list):
        return ()
    return tuple(p for p in data if isinstance(p, dict))
