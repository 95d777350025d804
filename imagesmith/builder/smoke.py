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
from imagesmith.matrix.versions import NvVersion

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
    got, want = NvVersion.leading(found), NvVersion.leading(promised)
    return got is not None and want is not None and got.keeps(want)


def check_doctor(
    exit_code: int, stdout: str, stderr: str, cuda_runtime: str | None, cudnn: str | None = None
) -> TestResult:
    """The doctor ran, printed its JSON report, and found the libcudart (and cuDNN) the plan promised,
    from the wheels."""
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
            if entry.get("origin") != "wheel":
                return TestResult(
                    name="doctor",
                    ok=False,
                    detail=f"libcudart {version} at {entry.get('path')} comes from {entry.get('origin')}, not the wheels",
                )
            detail = f"libcudart {version} at {entry.get('path')} (wheel)"
            if cudnn is not None:
                found_cudnn = _cudnn_entry(libraries, cudnn)
                if isinstance(found_cudnn, str):
                    return TestResult(name="doctor", ok=False, detail=found_cudnn)
                detail += f"; libcudnn {found_cudnn.get('version')} (wheel)"
            return TestResult(name="doctor", ok=True, detail=detail)
    if not cudart:
        return TestResult(
            name="doctor", ok=False, detail=f"doctor found no libcudart; the plan promised {cuda_runtime}"
        )
    return TestResult(
        name="doctor",
        ok=False,
        detail=f"libcudart {', '.join(found)} does not match the planned CUDA runtime {cuda_runtime}",
    )


def _cudnn_entry(libraries: list[object], promised: str) -> dict[str, object] | str:
    """The libcudnn the doctor resolved, or why it does not keep the promise (same major, from a wheel)."""
    entries = [
        e for e in libraries if isinstance(e, dict) and str(e.get("name", "")).startswith("libcudnn.so")
    ]
    if not entries:
        return f"doctor found no libcudnn; the label promises cuDNN {promised}"
    entry = entries[0]
    version = str(entry.get("version") or "")
    got, want = NvVersion.leading(version), NvVersion.leading(promised)
    if got is None or want is None or got.major != want.major or entry.get("origin") != "wheel":
        return f"libcudnn {version or '?'} from {entry.get('origin')} does not keep the promise cuDNN {promised} (wheel)"
    return entry


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


# -- the framework's own word on its CUDA and cuDNN -------------------------------------------------
VERSIONS_SCRIPT = r"""
import json, sys
fw = sys.argv[1]
out = {}
def cudnn_text(v):
    # cuDNN 9 encodes major*10000 + minor*100 + patch; cuDNN 8 major*1000 + minor*100 + patch.
    return f"{v // 10000}.{v % 10000 // 100}.{v % 100}" if v >= 90000 else f"{v // 1000}.{v % 1000 // 100}.{v % 100}"
if fw == "torch":
    import torch
    out["cuda"] = torch.version.cuda
    v = torch.backends.cudnn.version()
    out["cudnn"] = cudnn_text(int(v)) if v else None
elif fw == "tensorflow":
    import tensorflow as tf
    info = tf.sysconfig.get_build_info()
    out["cuda"] = info.get("cuda_version")
    out["cudnn"] = info.get("cudnn_version")
elif fw == "jax":
    import importlib.metadata as m
    from jax._src.lib import cuda_versions
    if cuda_versions is None:
        raise SystemExit("jax reports no CUDA plugin (jax_cuda*_plugin not importable)")
    v = int(cuda_versions.cuda_runtime_get_version())
    out["cuda"] = f"{v // 1000}.{v % 1000 // 10}"
    out["cudnn"] = cudnn_text(int(cuda_versions.cudnn_get_version()))
    out["plugin"] = next((d.version for d in m.distributions() if (d.metadata["Name"] or "").startswith("jax-cuda")), None)
else:
    import importlib.metadata as m
    for name in ("nvidia-cuda-runtime", "nvidia-cuda-runtime-cu12", "nvidia-cuda-runtime-cu11"):
        try:
            out["cuda"] = m.version(name)
            break
        except m.PackageNotFoundError:
            pass
print(json.dumps(out))
"""


def versions_command(framework: Framework) -> list[str]:
    return ["python3", "-c", VERSIONS_SCRIPT, framework.name]


def _same_release(reported: str, promised: str) -> bool:
    """Compare on the components both sides give: torch says ``13.0`` for a ``13.0.2`` runtime."""
    got, want = NvVersion.leading(reported), NvVersion.leading(promised)
    return got is not None and want is not None and got.same_release(want)


def _same_major_at_least(reported: str, floor: str) -> bool:
    got, want = NvVersion.leading(reported), NvVersion.leading(floor)
    if got is None or want is None or got.major != want.major:
        return False
    width = min(len(got.parts), len(want.parts), 3)
    return NvVersion(got.parts[:width]) >= NvVersion(want.parts[:width])


def check_versions(
    framework: Framework, labels: Mapping[str, str], exit_code: int, stdout: str, stderr: str
) -> TestResult:
    """The CUDA and cuDNN the framework itself reports equal the image's io.imagesmith.* labels."""
    from imagesmith.contract.labels import ImageLabels

    name = "framework-versions"
    try:
        reported = json.loads(stdout.strip().splitlines()[-1]) if stdout.strip() else None
    except ValueError:
        reported = None
    if exit_code != 0 or not isinstance(reported, dict):
        tail = (stderr.strip().splitlines() or stdout.strip().splitlines() or ["no output"])[-1]
        return TestResult(name=name, ok=False, detail=f"{framework.name} did not report versions: {tail}")
    promised = ImageLabels.from_labels(labels)
    problems: list[str] = []
    said: list[str] = []
    for key, want in (("cuda", promised.cuda), ("cudnn", promised.cudnn)):
        got = reported.get(key)
        said.append(f"{key} {got}")
        if want is None:
            continue
        if not got:
            problems.append(f"{framework.name} reports no {key}; the label says {want}")
        elif key == "cudnn" and _same_major_at_least(str(got), want):
            # The label is the cuDNN the framework was built against; cuDNN keeps compatibility within a
            # major, and the wheels let pip install a newer 9.x (JAX's plugin asks for >=): a floor.
            said[-1] += f" (>= {want})"
        elif not _same_release(str(got), want):
            problems.append(f"{framework.name} reports {key} {got}; the label says {want}")
    if problems:
        return TestResult(name=name, ok=False, detail="; ".join(problems))
    return TestResult(name=name, ok=True, detail=f"{framework.name} reports {', '.join(said)}")


# -- no CUDA library twice --------------------------------------------------------------------------
# Copies a package loads by absolute path, never through the loader's search: Triton's bundled CUPTI
# (for its profiler) sits beside the CUDA wheels' own. Reported, not failed.
PRIVATE_COPIES = ("/triton/backends/nvidia/lib/",)

DUPLICATES_SCRIPT = r"""
import json, os, re
pattern = re.compile(r"^(lib(?:cu|nv|nccl)[\w.+-]*?)\.so(?:\.[\d.]+)?$")
found = {}
for top in ("/opt", "/usr", "/home", "/root", "/srv", "/app", "/lib", "/lib64"):
    if os.path.islink(top):
        continue
    for root, dirs, files in os.walk(top):
        for f in files:
            m = pattern.match(f)
            if not m or m.group(1).startswith(("libnvidia", "libcuda")) and not m.group(1).startswith(("libcudart", "libcudnn")):
                continue
            path = os.path.join(root, f)
            if os.path.islink(path) or not os.path.isfile(path):
                continue
            found.setdefault(m.group(1), []).append(path)
print(json.dumps(found))
"""

DUPLICATES_COMMAND = ["python3", "-c", DUPLICATES_SCRIPT]


def check_duplicates(exit_code: int, stdout: str, stderr: str) -> TestResult:
    """Each CUDA-family library exists once as a file (symlinks to it are fine)."""
    name = "cuda-duplicates"
    try:
        found = json.loads(stdout)
    except ValueError:
        tail = (stderr.strip().splitlines() or ["no output"])[-1]
        return TestResult(
            name=name, ok=False, detail=f"the filesystem walk failed (exit {exit_code}): {tail}"
        )
    twice: list[str] = []
    private: list[str] = []
    for library, paths in sorted(found.items()):
        public = [p for p in paths if not any(mark in p for mark in PRIVATE_COPIES)]
        private += [p for p in paths if p not in public and len(paths) > 1]
        if len(public) > 1:
            twice.append(f"{library}: {', '.join(sorted(public))}")
    if twice:
        return TestResult(name=name, ok=False, detail="more than one copy of " + "; ".join(twice))
    note = f"; private copies loaded by path: {len(private)}" if private else ""
    return TestResult(name=name, ok=True, detail=f"{len(found)} CUDA-family libraries, each once{note}")


# -- devel: the image's own nvcc, and a torch CUDA extension -----------------------------------------
NVCC_SCRIPT = r"""
set -eu
cd "$(mktemp -d)"
cat > k.cu <<'CU'
#include <cuda_runtime.h>
__global__ void scale(float *x, float a, int n) { int i = blockIdx.x * blockDim.x + threadIdx.x; if (i < n) x[i] *= a; }
int main() { float *d; cudaMalloc(&d, 16 * sizeof(float)); scale<<<1, 16>>>(d, 2.0f, 16); return cudaDeviceSynchronize() == cudaSuccess ? 0 : 1; }
CU
echo "CUDA_HOME=${CUDA_HOME:-unset}"
nvcc --version | tail -n 2
nvcc -o k k.cu
test -x k
echo "compiled $(stat -c %s k) bytes"
"""

NVCC_COMMAND = ["bash", "-c", NVCC_SCRIPT]

TORCH_EXTENSION_SCRIPT = r"""
import os, tempfile
os.environ.setdefault("TORCH_CUDA_ARCH_LIST", "8.0")  # no GPU to ask; one target keeps the build short
from torch.utils.cpp_extension import CUDA_HOME, load_inline
cuda = '''
#include <torch/extension.h>
__global__ void twice(float *x, int n) { int i = blockIdx.x * blockDim.x + threadIdx.x; if (i < n) x[i] *= 2; }
torch::Tensor run(torch::Tensor x) { twice<<<1, 256>>>(x.data_ptr<float>(), x.numel()); return x; }
'''
module = load_inline(
    name="imagesmith_smoke_ext", cpp_sources="torch::Tensor run(torch::Tensor x);", cuda_sources=cuda,
    functions=["run"], build_directory=tempfile.mkdtemp(), verbose=False,
)
print(f"built {module.__file__} with CUDA_HOME={CUDA_HOME}")
"""

TORCH_EXTENSION_COMMAND = ["python3", "-c", TORCH_EXTENSION_SCRIPT]


def check_command(name: str, exit_code: int, stdout: str, stderr: str) -> TestResult:
    """A command-style check: exit 0 passes; the last line it printed is the detail."""
    lines = (stdout.strip().splitlines() or []) + (stderr.strip().splitlines() or [])
    if exit_code != 0:
        tail = (stderr.strip().splitlines() or stdout.strip().splitlines() or ["no output"])[-1]
        return TestResult(name=name, ok=False, detail=f"exit {exit_code}: {tail}")
    last = stdout.strip().splitlines()[-1] if stdout.strip() else (lines[-1] if lines else "ok")
    return TestResult(name=name, ok=True, detail=last)
