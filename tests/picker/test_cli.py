"""The commands as a user runs them: a real subprocess, exit codes, one-line errors, parseable output."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures" / "providers"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "imagesmith", *args], capture_output=True, text=True, timeout=60
    )


def test_pick_text_states_catalog_date_and_choice() -> None:
    p = run("pick", "--gpus", "1", "--gpu-memory", "24+")
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("catalog ") and "choice:" in p.stdout and "cheaper rows rejected" in p.stdout


def test_pick_json_and_negative_exit() -> None:
    p = run("pick", "--gpu", "H200", "--cloud", "gcp", "--json")
    assert p.returncode == 1
    doc = json.loads(p.stdout)
    assert doc["schema"] == 1 and doc["choice"] is None and doc["rejected"]
    assert p.stderr.count("\n") == 1 and "closest:" in p.stderr and "Traceback" not in p.stderr


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--cpus", "4GB"], "--cpus '4GB'"),
        (["--gpu", "X200"], "--gpu: unknown GPU model 'X200'"),
        (["--image", "not-a-tag"], "--image 'not-a-tag'"),
        (["--top", "-1"], "--top -1"),
        (["--cpus", "0"], "--cpus '0': vCPUs must be above 0"),
        (["--cpus", "..0"], "--cpus '..0'"),
        (["--memory", "0"], "--memory '0': memory must be above 0"),
        (["--memory", "-4"], "--memory '-4'"),
        (["--memory", "0x"], "--memory '0x'"),
        (["--gpus", "1.5"], "--gpus '1.5': GPUs come whole"),
        (["--gpus", "0.5..2"], "--gpus '0.5..2'"),
        (["--cpus", "four"], "--cpus 'four'"),
    ],
)
def test_pick_bad_input_exit_2_one_line(args: list[str], needle: str) -> None:
    p = run("pick", *args)
    assert p.returncode == 2 and needle in p.stderr and p.stderr.count("\n") == 1, p.stderr


def test_formats() -> None:
    p = run("pick", "--gpus", "1", "--cloud", "aws", "--format", "karpenter")
    assert p.returncode == 0 and "karpenter.sh/capacity-type" in p.stdout and "g4dn.xlarge" in p.stdout
    p = run("pick", "--gpus", "1", "--cloud", "gcp", "--format", "k8s")
    assert (
        "node.kubernetes.io/instance-type: n1-standard-4" in p.stdout
        and "gke-accelerator: nvidia-tesla-t4" in p.stdout
    )
    p = run("pick", "--gpus", "1", "--format", "sagemaker")
    assert p.returncode == 0 and p.stdout.strip().startswith("ml.")
    p = run("pick", "--gpus", "1", "--cloud", "gcp", "--format", "karpenter")
    assert p.returncode == 2 and "--format karpenter" in p.stderr
    # Karpenter provisions EC2: without --cloud the format itself says where to look.
    p = run("pick", "--gpus", "1", "--format", "karpenter")
    assert p.returncode == 0 and "g4dn.xlarge" in p.stdout, p.stderr


def test_karpenter_requirements_use_well_known_labels_and_one_region() -> None:
    import yaml

    p = run("pick", "--gpus", "1", "--format", "karpenter", "--top", "8")
    doc = yaml.safe_load(p.stdout)
    req = {r["key"]: r["values"] for r in doc["requirements"]}
    # NodeSelectorRequirement values are strings: a YAML 1 would be refused by the API server.
    assert all(isinstance(v, str) for values in req.values() for v in values)
    assert (
        req["karpenter.k8s.aws/instance-gpu-count"] == ["1"]
        and len(req["topology.kubernetes.io/region"]) == 1
    )
    families = {t.split(".")[0] for t in req["node.kubernetes.io/instance-type"]}
    assert set(req["karpenter.k8s.aws/instance-family"]) == families
    # Every type offered is in that one region (a NodePool serves one cluster).
    answer = json.loads(
        run("pick", "--gpus", "1", "--json", "--region", req["topology.kubernetes.io/region"][0]).stdout
    )
    assert answer["choice"]["instance_type"] == req["node.kubernetes.io/instance-type"][0]


def test_a_spot_pick_pins_the_zone_it_was_priced_in() -> None:
    import yaml

    aws = json.loads(run("pick", "--cpus", "4", "--cloud", "aws", "--spot", "--json").stdout)["choice"]
    snippet = yaml.safe_load(run("pick", "--cpus", "4", "--cloud", "aws", "--spot", "--format", "k8s").stdout)
    if aws["zone"]:
        assert (
            snippet["nodeSelector"]["topology.k8s.aws/zone-id"] == aws["zone"]
        )  # zone ids, not names, on AWS
    gcp = yaml.safe_load(run("pick", "--gpus", "1", "--cloud", "gcp", "--spot", "--format", "k8s").stdout)
    assert gcp["nodeSelector"]["topology.kubernetes.io/zone"].startswith(
        gcp["nodeSelector"]["topology.kubernetes.io/region"]
    )
    on_demand = yaml.safe_load(run("pick", "--gpus", "1", "--cloud", "gcp", "--format", "k8s").stdout)
    assert "topology.kubernetes.io/zone" not in on_demand["nodeSelector"]


def test_fractional_gpus_are_a_flag_away() -> None:
    p = run("pick", "--gpus", "0.5", "--allow-fractional", "--json")
    assert p.returncode in (0, 1) and "GPUs come whole" not in p.stderr


def test_closest_options_fail_by_the_least_and_count_the_nodes() -> None:
    p = run("pick", "--gpus", "16", "--gpu", "H100", "--json")
    assert p.returncode == 1
    rejected = json.loads(p.stdout)["rejected"]
    counts = [r["row"]["gpu_count"] for r in rejected]
    assert counts[:3] == [8, 8, 8], counts  # the 8-GPU machines miss by the least, cheapest first
    assert counts == sorted(counts, reverse=True)
    assert rejected[0]["failed"][0]["got"] == "8 per node (2 nodes give 16)"
    assert "2 nodes give 16" in p.stderr and p.stderr.count("\n") == 1


def test_a_burstable_choice_is_noted_once() -> None:
    p = run("pick", "--cpus", "2", "--memory", "4")
    assert p.returncode == 0 and "t3." in p.stdout
    assert p.stdout.count("note: burstable") == 1 and p.stdout.count("note:") == 1, p.stdout


def test_instances_list_csv_json_and_info() -> None:
    p = run("instances", "list", "--csv", "--gpu", "L4")
    rows = list(csv.DictReader(io.StringIO(p.stdout)))
    assert rows and all(r["gpu_model"] == "L4" and r["source"] for r in rows)
    doc = json.loads(run("instances", "list", "--json", "--cloud", "azure").stdout)
    assert doc["catalog_date"] and {r["cloud"] for r in doc["rows"]} == {"azure"}
    info = run("instances", "info")
    assert info.returncode == 0 and "catalog date:" in info.stdout and "aws-offer-json" in info.stdout


def test_generate_to_a_directory_then_pick_from_it(tmp_path: Path) -> None:
    p = run("instances", "generate", "--sources", str(FIXTURES), "--out", str(tmp_path))
    assert p.returncode == 0, p.stderr
    p = run("pick", "--gpus", "1", "--catalog", str(tmp_path), "--json")
    assert json.loads(p.stdout)["choice"]["instance_type"] == "Standard_NC4as_T4_v3"


def test_generate_failure_is_one_line_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "src"
    bad.mkdir()
    (bad / "manifest.json").write_text('{"inputs": [{"cloud": "aws"}]}')
    p = run("instances", "generate", "--sources", str(bad), "--out", str(tmp_path / "out"))
    assert p.returncode == 2 and "manifest.json: inputs[0]" in p.stderr and "Traceback" not in p.stderr
    assert not (tmp_path / "out").exists()


def test_missing_catalog_is_an_environment_problem(tmp_path: Path) -> None:
    p = run("pick", "--gpus", "1", "--catalog", str(tmp_path))
    assert p.returncode == 3 and "instances generate" in p.stderr


def test_pick_does_not_import_heavy_modules() -> None:
    code = (
        "import sys; from imagesmith.cli import run; run(['pick','--gpus','1','--json']);"
        "print('HEAVY=' + ','.join(m for m in ('docker','jinja2','copier','rich','yaml','packaging') if m in sys.modules))"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.stdout.strip().splitlines()[-1] == "HEAVY=", p.stdout[-300:]


def test_every_answer_says_what_it_searched() -> None:
    p = run("pick", "--gpus", "1", "--cloud", "gcp", "--json")
    assert p.returncode == 0, p.stderr
    searched = json.loads(p.stdout)["searched"]
    assert searched["clouds"] == ["gcp"] and searched["services"] == ["compute-engine"]
    # SkyPilot's catalog spans every GCP region; the answer lists them, their zones and the confidence mix.
    assert (
        {"us-central1", "europe-west4", "asia-northeast1"} <= set(searched["regions"])
        and searched["zones"] > len(searched["regions"])
        and "a3" in searched["families"]
        and "p5" not in searched["families"]
        and set(searched["confidence"]) <= {"high", "medium", "low"}
    )
    assert (
        searched["catalog_date"]
        and searched["sources"]
        and all(s.startswith("gcp/") for s in searched["sources"])
    )
    text = run("pick", "--gpus", "1", "--cloud", "gcp").stdout.splitlines()
    assert text[1].startswith("searched ") and f"{len(searched['regions'])} regions" in text[1]
    assert f"({searched['zones']} zones)" in text[1] and "families" in text[1]


@pytest.mark.parametrize(
    "args",
    [
        ["--gpus", "1", "--gpu-memory", "24+"],
        ["--cpus=8", "--memory", "32", "--zone", "use1-az1"],
        ["--gpu", "H200", "--cloud", "gcp", "--json"],
        ["--gpus", "1", "--format", "k8s", "--spot"],
        ["--gpus", "16", "--gpu", "H100", "--top", "2"],
        ["--cpus", "0"],
        ["--cpus", "4", "--headroom", "lots"],
        ["--instance-type", "g6.xlarge", "--cpus", "8", "--gpus", "1"],
        ["--region", "us-eastt-1"],
    ],
)
def test_the_quick_path_answers_exactly_as_click_does(args: list[str]) -> None:
    """`imagesmith pick` is answered without click when every argument is one of its flags; the answer, the
    error line and the exit code must be click's, byte for byte."""
    quick = run("pick", *args)
    code = "import sys; from imagesmith.cli import run; sys.exit(run(sys.argv[1:]))"
    slow = subprocess.run(
        [sys.executable, "-c", code, "pick", *args], capture_output=True, text=True, timeout=60
    )
    assert (quick.returncode, quick.stdout, quick.stderr) == (slow.returncode, slow.stdout, slow.stderr)


def test_the_quick_path_leaves_help_and_unknown_flags_to_click() -> None:
    assert "Usage: imagesmith pick" in run("pick", "--help").stdout
    p = run("pick", "--cpuz", "4")
    assert p.returncode == 2 and "--cpuz" in p.stderr and "Traceback" not in p.stderr
    p = run("pick", "--fit", "vm")
    assert p.returncode == 2 and "'vm' is not one of 'pods', 'machine'" in p.stderr


def test_the_quick_path_imports_no_heavy_module() -> None:
    """What `imagesmith pick` is timed on (bench/bench_picker.py): no click, typing, dataclasses, re, pathlib, csv
    or json on the way to a text answer (each costs milliseconds against a ~15 ms interpreter start)."""
    heavy = ("click", "typing", "dataclasses", "re", "pathlib", "csv", "json", "inspect")
    code = (
        "import sys; from imagesmith.__main__ import main; main(['pick','--cpus','4','--memory','16','--gpus','1']);"
        f"print('HEAVY=' + ','.join(m for m in {heavy!r} if m in sys.modules))"
    )
    for _ in range(2):  # the first run may parse the catalog (csv, json): the second reads the parse cache
        p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.stdout.strip().splitlines()[-1] == "HEAVY=", p.stdout[-300:]
