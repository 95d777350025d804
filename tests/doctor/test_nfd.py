"""The doctor as a fleet instrument: ``--nfd-features FILE`` and ``doctor manifest`` (issue 14, item 7).

Real runs only: the doctor on this machine (no GPU here: the verdict is ``fail`` with ``NO_GPU_VISIBLE``),
a simulated 570 node built from gcc-compiled stub driver libraries, and the manifests checked against the
vendored Kubernetes schemas (``k8s_schemas/``, strict: unknown keys fail).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from imagesmith.contract import nfd
from imagesmith.doctor.click_command import doctor_command
from tests.doctor.conftest import Node

SCHEMAS = Path(__file__).resolve().parent / "k8s_schemas"
# Kubernetes' label value rule (apimachinery validation.IsValidLabelValue), written out independently.
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
# The name part of a label key (a qualified name without a prefix).
LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")


def _doctor(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "imagesmith", "doctor", *args],
        capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})},
    )  # fmt: skip


def assert_valid_labels(labels: dict[str, str]) -> None:
    for name, value in labels.items():
        assert LABEL_NAME.match(name) and len(name) <= 63, name
        assert len(nfd.NFD_NAMESPACE + name) <= 253 + 1 + 63, name
        assert LABEL_VALUE.match(value) and len(value) <= 63, (name, value)


def test_this_machine_writes_a_feature_file_nfd_reads(tmp_path: Path) -> None:
    target = tmp_path / "features.d" / "imagesmith"
    target.parent.mkdir()
    proc = _doctor("--json", "--nfd-features", str(target))
    assert proc.returncode in (0, 1), proc.stderr
    report = json.loads(proc.stdout)  # the diagnosis is printed as usual
    labels = nfd.parse_features(target.read_text(encoding="ascii"))
    assert_valid_labels(labels)
    assert labels[nfd.SCHEMA] == "1"
    assert labels[nfd.VERDICT] == {"ok": "ok", "warning": "warn", "error": "fail"}[report["status"]]
    codes = [f["code"] for f in report["findings"] if f["severity"] in ("error", "warning")]
    read = nfd.read_node_features(labels)
    assert read is not None and list(read.codes) == codes
    assert read.version and labels[nfd.VERSION] == read.version
    # No GPU on this machine: the verdict fails on visibility, and no driver fact is invented.
    if not Path("/proc/driver/nvidia/version").exists():
        assert labels[nfd.VERDICT] == "fail" and "NO_GPU_VISIBLE" in read.codes
        assert nfd.DRIVER not in labels and nfd.GPU_COUNT not in labels
    # The atomic write leaves nothing behind (and NFD would have skipped the hidden temporary file).
    assert sorted(p.name for p in target.parent.iterdir()) == ["imagesmith"]
    assert oct(target.stat().st_mode & 0o777) == "0o644"
    # The same labels as NFD puts them on the node read back the same.
    assert nfd.read_node_features({nfd.NFD_NAMESPACE + k: v for k, v in labels.items()}) == read


def test_rewrite_replaces_the_file_whole(tmp_path: Path) -> None:
    target = tmp_path / "imagesmith"
    target.write_text("stale-label=1\n" * 5000)
    proc = _doctor("--nfd-features", str(target), "--no-probe")
    assert proc.returncode in (0, 1), proc.stderr
    labels = nfd.parse_features(target.read_text())
    assert "stale-label" not in labels and nfd.VERDICT in labels


def test_simulated_570_node_labels_its_driver(bare_node: Node, tmp_path: Path) -> None:
    node = bare_node
    node.kernel_module("570.124.06")
    node.dev_nodes("nvidiactl", "nvidia-uvm", *(f"nvidia{i}" for i in range(8)))
    node.libcuda("/usr/local/nvidia/lib64", "570.124.06", cuda=12080)
    node.nvml("/usr/local/nvidia/lib64", "570.124.06", cuda=12080, count=8)
    node.env["LD_LIBRARY_PATH"] = "/usr/local/nvidia/lib64"
    target = tmp_path / "imagesmith"
    proc = node.doctor("--json", "--nfd-features", str(target))
    assert proc.returncode in (0, 1), proc.stderr
    report = json.loads(proc.stdout)
    labels = nfd.parse_features(target.read_text())
    assert_valid_labels(labels)
    assert labels[nfd.DRIVER] == "570.124.06"
    assert labels[nfd.DRIVER_MAJOR] == "570"
    assert labels[nfd.CUDA_MAX] == "12.8"
    assert labels[nfd.GPU_COUNT] == "8"
    assert labels[nfd.GPU_PRODUCT] == "NVIDIA-H100-80GB-HBM3"
    assert labels[nfd.GPU_COMPUTE] == "9.0"
    assert labels[nfd.VERDICT] == {"ok": "ok", "warning": "warn", "error": "fail"}[report["status"]]
    read = nfd.read_node_features(labels)
    assert read is not None and read.driver_major == 570 and read.gpu_count == 8


@pytest.mark.parametrize("where", ["missing-dir", "proc", "is-a-directory", "parent-is-a-file"])
def test_unwritable_path_is_one_line_and_exit_3_after_the_diagnosis(tmp_path: Path, where: str) -> None:
    (tmp_path / "file").write_text("")
    target = {
        "missing-dir": tmp_path / "no" / "such" / "imagesmith",
        "proc": Path("/proc/imagesmith"),  # refused even to root
        "is-a-directory": tmp_path,
        "parent-is-a-file": tmp_path / "file" / "imagesmith",
    }[where]
    proc = _doctor("--no-probe", "--nfd-features", str(target))
    assert proc.returncode == 3, (proc.returncode, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("imagesmith doctor: error: "), proc.stderr
    assert str(target) in lines[0]
    assert proc.stdout.startswith(("OK", "WARNING", "ERROR")), proc.stdout[:200]
    if where == "proc":
        assert not any(p.name.startswith(".imagesmith") for p in Path("/proc").iterdir())


def test_nfd_features_is_about_the_node_not_an_image() -> None:
    proc = _doctor("--image", "example:1", "--nfd-features", "/tmp/x")
    assert proc.returncode == 2 and "--nfd-features" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_nfd_label_values_are_always_valid() -> None:
    for raw in [
        "NVIDIA H100 80GB HBM3",
        "  -_.weird/name (x)_- ",
        "x" * 200,
        "570.124.06",
        "ü",
        "a" + "-" * 70 + "b",
    ]:
        value = nfd.label_value(raw)
        assert LABEL_VALUE.match(value) and len(value) <= 63, (raw, value)
        assert nfd.is_label_value(value)
    for bad in ["-a", "a-", "a b", "x" * 64, "a/b"]:
        assert not nfd.is_label_value(bad)
        assert not (LABEL_VALUE.match(bad) and len(bad) <= 63)


def test_nfd_many_codes_continue_in_numbered_labels_and_read_back() -> None:
    codes = tuple(f"SOME_REASON_CODE_NUMBER_{i:02d}" for i in range(12))
    features = nfd.NodeFeatures(verdict="fail", codes=codes, driver="535.104.05", driver_major=535,
                                gpu_product="Tesla V100-SXM2-16GB", gpu_count=4)  # fmt: skip
    labels = nfd.parse_features(nfd.format_features(features))
    assert_valid_labels(labels)
    assert nfd.CODES in labels and f"{nfd.CODES}-2" in labels
    assert labels[nfd.GPU_PRODUCT] == "Tesla-V100-SXM2-16GB"
    read = nfd.read_node_features(labels)
    assert read is not None and read.codes == codes and read.driver_major == 535
    healthy = nfd.parse_features(nfd.format_features(nfd.NodeFeatures(verdict="ok")))
    assert healthy[nfd.CODES] == "none" and nfd.read_node_features(healthy) == nfd.NodeFeatures(verdict="ok")
    with pytest.raises(ValueError, match="verdict"):
        nfd.to_labels(nfd.NodeFeatures(verdict="error"))


def test_nfd_parse_features_reads_as_the_nfd_worker_does() -> None:
    text = (
        "# written by hand\n# +expiry-time=2030-01-01T00:00:00Z\n\n"
        "imagesmith-verdict=warn\n  imagesmith-driver=550.54.15  \nflag-only\nimagesmith-codes=A.B\n"
        "other.example.com/x=1\nimagesmith-verdict=ok\n"
    )
    labels = nfd.parse_features(text)
    assert labels == {
        "imagesmith-verdict": "ok",
        "imagesmith-driver": "550.54.15",
        "flag-only": "true",
        "imagesmith-codes": "A.B",
        "other.example.com/x": "1",
    }
    read = nfd.read_node_features(labels)
    assert read is not None and read.codes == ("A", "B") and read.driver_major is None
    assert nfd.read_node_features({"imagesmith-driver": "550.54.15"}) is None  # no verdict: not labelled


def test_plain_doctor_does_not_import_the_nfd_writer_and_nfd_path_imports_nothing_heavy(
    tmp_path: Path,
) -> None:
    code = (
        "import sys, io, contextlib; from imagesmith.__main__ import main\n"
        "argv = sys.argv[1:]\n"
        "with contextlib.redirect_stdout(io.StringIO()): rc = main(['doctor', '--no-probe', *argv])\n"
        "heavy = ('dataclasses', 'argparse', 'json', 're', 'typing', 'inspect', 'tempfile', 'pathlib', 'click',\n"
        "         'yaml', 'imagesmith.contract.nfd', 'imagesmith.doctor.nfd', 'imagesmith.doctor.manifest')\n"
        "print(rc in (0, 1), sorted(m for m in heavy if m in sys.modules))"
    )

    def run(*argv: str) -> str:
        proc = subprocess.run([sys.executable, "-S", "-c", code, *argv], capture_output=True, text=True,
                              check=False, env={"PYTHONPATH": ":".join(sys.path)})  # fmt: skip
        return proc.stdout.strip() + proc.stderr[-500:]

    assert run() == "True []"
    assert (
        run("--nfd-features", str(tmp_path / "f"))
        == "True ['imagesmith.contract.nfd', 'imagesmith.doctor.nfd']"
    )


# --- doctor manifest ---------------------------------------------------------------------------------


def k8s_errors(document: dict[str, Any]) -> list[str]:
    from jsonschema import Draft202012Validator  # type: ignore[import-untyped,unused-ignore]
    from referencing import Registry, Resource

    schema_file = {
        ("apps/v1", "DaemonSet"): "daemonset-apps-v1.json",
        ("batch/v1", "Job"): "job-batch-v1.json",
    }[(document["apiVersion"], document["kind"])]
    definitions = json.loads((SCHEMAS / "_definitions.json").read_text(encoding="utf-8"))
    root = json.loads((SCHEMAS / schema_file).read_text(encoding="utf-8"))
    registry: Registry[Any] = Registry().with_resources(
        [
            (definitions["$id"], Resource.from_contents(definitions)),
            (root["$id"], Resource.from_contents(root)),
        ]
    )
    validator = Draft202012Validator(root, registry=registry)
    return [
        f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}"
        for e in validator.iter_errors(document)
    ]


def _manifest(*args: str) -> dict[str, Any]:
    proc = _doctor("manifest", *args)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("# imagesmith doctor on GPU nodes")
    documents = list(yaml.safe_load_all(proc.stdout))
    assert len(documents) == 1
    document = documents[0]
    assert isinstance(document, dict)
    return document


@pytest.mark.parametrize("kind", ["daemonset", "job"])
def test_manifest_validates_against_the_kubernetes_schema(kind: str) -> None:
    document = _manifest("--kind", kind, "--image", "ghcr.io/acme/ml/base:py3.11", "--namespace", "gpu-ops")
    assert k8s_errors(document) == []
    assert document["kind"] == {"daemonset": "DaemonSet", "job": "Job"}[kind]
    assert document["metadata"]["namespace"] == "gpu-ops"
    pod = document["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    assert pod["runtimeClassName"] == "nvidia"
    (container,) = pod["containers"]
    assert container["image"] == "ghcr.io/acme/ml/base:py3.11"
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["NVIDIA_VISIBLE_DEVICES"] == "all"
    assert "utility" in env["NVIDIA_DRIVER_CAPABILITIES"].split(",")
    features_dir = "/etc/kubernetes/node-feature-discovery/features.d"
    volume = next(v for v in pod["volumes"] if "hostPath" in v)
    assert volume["hostPath"]["path"] == features_dir
    mount = next(m for m in container["volumeMounts"] if m["name"] == volume["name"])
    assert mount["mountPath"] == features_dir and not mount.get("readOnly", False)
    assert f"imagesmith doctor --nfd-features '{features_dir}/imagesmith'" in container["command"][-1]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["resources"]["limits"]["memory"] and container["resources"]["requests"]["cpu"]
    assert "nvidia.com/gpu" not in container["resources"]["limits"]  # labelling takes no GPU from workloads
    if kind == "daemonset":
        assert "while true" in container["command"][-1] and "sleep 600" in container["command"][-1]
        assert (
            document["spec"]["selector"]["matchLabels"] == document["spec"]["template"]["metadata"]["labels"]
        )
    else:
        assert pod["restartPolicy"] == "Never"


def test_manifest_interval_and_features_dir() -> None:
    document = _manifest(
        "--kind", "daemonset", "--interval", "1h", "--features-dir", "/var/lib/nfd/features.d/"
    )
    assert k8s_errors(document) == []
    (container,) = document["spec"]["template"]["spec"]["containers"]
    assert "sleep 3600" in container["command"][-1]
    assert "--nfd-features '/var/lib/nfd/features.d/imagesmith'" in container["command"][-1]


@pytest.mark.parametrize(
    ("args", "where"),
    [
        ([], "manifest"),
        (["--kind", "deployment"], "--kind deployment"),
        (["--kind", "job", "--interval", "soon"], "--interval soon"),
        (["--kind", "job", "--interval", "0m"], "--interval 0m"),
        (["--kind", "job", "--namespace", "GPU_Ops"], "--namespace GPU_Ops"),
        (["--kind", "job", "--features-dir", "relative/dir"], "--features-dir relative/dir"),
        (["--kind", "job", "--bogus"], "--bogus"),
    ],
)
def test_manifest_bad_input_is_one_line_exit_2(args: list[str], where: str) -> None:
    proc = _doctor("manifest", *args)
    assert proc.returncode == 2, proc.stdout
    assert len(proc.stderr.strip().splitlines()) == 1 and where in proc.stderr, proc.stderr
    assert proc.stdout == ""


def test_manifest_through_the_click_group_and_help() -> None:
    result = CliRunner().invoke(doctor_command, ["manifest", "--kind", "job"])
    assert result.exit_code == 0, result.output
    assert k8s_errors(yaml.safe_load(result.output)) == []
    assert "manifest" in _doctor("--help").stdout and "--nfd-features" in _doctor("--help").stdout
    assert "--kind" in _doctor("manifest", "--help").stdout
