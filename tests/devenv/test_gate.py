"""The gate before paying (issue 15 item 4): the dev image's labels held to a picked instance (the picker's real
catalog, the sourced provider-image drivers) or to a node pool (the fleet's recorded nodes), with the fleet's
verdict and reason codes; refusals and unknowns as one-line errors with distinct exit codes; the answer's time."""

from __future__ import annotations

import json
import time
import tomllib
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from imagesmith.contract.labels import ImageLabels
from imagesmith.devenv import gate
from imagesmith.devenv.gate_cli import gate_command
from imagesmith.errors import EXIT_BAD_INPUT, EXIT_ENVIRONMENT, EXIT_NEGATIVE, ImagesmithError
from imagesmith.images.catalog import Catalog, from_plan_json
from imagesmith.matrix import knowledge
from imagesmith.matrix.codes import Code

REPO = Path(__file__).resolve().parents[2]
NODES = REPO / "tests" / "fleet" / "fixtures" / "nodes.json"
RESEARCH = REPO / "docs" / "research" / "provider-gpu-drivers.toml"
CU130 = "ghcr.io/acme/ml/torch:2.13.0-py3.11-cu13.0-devel-bookworm-r1"
CU126 = "ghcr.io/acme/ml/torch:2.13.0-py3.11-cu12.6-devel-bookworm-r1"
# Outside a project the command judges against the embedded default policy, which has no release (-rN) part.
EMBEDDED_CU130 = CU130.removesuffix("-r1")
EMBEDDED_CU126 = CU126.removesuffix("-r1")


@pytest.fixture(scope="module")
def plan() -> Catalog:
    return from_plan_json(REPO / "examples" / "team" / "base_images" / "plan.json")


def curated(plan: Catalog, tag: str) -> ImageLabels:
    return gate.labels_of(plan.known()[tag])


def torch_labels(variant: str) -> ImageLabels:
    """The torch 2.11 <variant> dev image's promises: the fleet tests' labels (written from the matrix as
    images/plan.py writes them), as the devel variant."""
    from imagesmith.contract.record import replace
    from tests.fleet.conftest import torch_labels as fleet_labels

    return replace(ImageLabels.from_labels(fleet_labels(variant)), variant="devel")


# ---- the data ------------------------------------------------------------------------------------------------


def test_every_provider_row_is_a_sourced_research_row() -> None:
    """No row is invented: each one is a row of docs/research/provider-gpu-drivers.toml (same image, driver,
    source, date, confidence), and what the gate judges at is read from the row's own driver text."""
    research = tomllib.loads(RESEARCH.read_text(encoding="utf-8"))["image"]
    keyed = {(r["image"], r["source"]): r for r in research}
    rows = gate.provider_images()
    assert len({r.id for r in rows}) == len(rows)
    for row in rows:
        original = keyed.get((row.image, row.source))
        assert original is not None, row.id
        assert row.date == original["date"] and row.confidence == original["confidence"], row.id
        assert row.driver.split(" ")[0] in original["driver"] or row.driver.startswith("not found"), row.id
        assert row.source and row.confidence in ("high", "medium", "low")
        for version in row.judge:
            branch = version.partition(".")[0]
            assert branch in row.driver, (row.id, version)
        if not row.judge:
            assert "not found" in row.driver, row.id


def test_gke_has_no_driver_row_to_judge() -> None:
    (gke,) = [r for r in gate.provider_images() if r.id == "gke-default"]
    assert gke.judge == () and gke.kind == "gap"


# ---- a picked instance ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider_image", "driver"),
    [("eks-al2-gpu-v20240522", "535.161.08 .. 535.183.01"), ("eks-al2-gpu-1.32-v20251209", "570.172.08")],
)
def test_refuses_torch_cu130_on_an_aws_instance_whose_image_ships_r535_or_r570(
    plan: Catalog, provider_image: str, driver: str
) -> None:
    target = gate.instance_target("g6.xlarge", "aws", provider_image_id=provider_image)
    assert target.gpu_model == "L4" and target.compute_capability == "8.9"  # from the picker's catalog row
    answer = gate.check(curated(plan, CU130), target, image=CU130, curated=plan)
    assert answer.answer == gate.REFUSE
    assert answer.codes == (Code.DRIVER_TOO_OLD,)
    assert answer.provider_image is not None and answer.provider_image.driver == driver
    # The nearest fixes: the curated CUDA 12.6 image of the plan, and the current EKS node image (R580).
    assert answer.fixes[0].startswith(f"build the dev image on the curated image {CU126} (CUDA 12.6)")
    # ...which a project gets by answering the devel image's runtime twin (its shipped base).
    assert answer.fixes[0].endswith(f"-d base_image={CU126.replace('-devel-', '-runtime-')}")
    assert any("eks-al2023-nvidia-v20260714 (driver 580.159.03" in f for f in answer.fixes)
    with pytest.raises(gate.GateRefused) as caught:
        answer.raise_unless_pass()
    assert caught.value.exit_code == EXIT_NEGATIVE
    line = caught.value.one_line()
    assert (
        "\n" not in line
        and "[DRIVER_TOO_OLD]" in line
        and f"fix: build the dev image on the curated image {CU126}" in line
    )


def test_passes_cu128_on_r570_and_newer_instances() -> None:
    labels = torch_labels("cu128")
    for provider_image in ("eks-al2-gpu-1.32-v20251209", "eks-al2023-nvidia-v20260714", "aks-gpu-grid"):
        cloud, itype = (
            ("azure", "Standard_NV36ads_A10_v5") if provider_image == "aks-gpu-grid" else ("aws", "g6.xlarge")
        )
        answer = gate.check(labels, gate.instance_target(itype, cloud, provider_image_id=provider_image))
        assert answer.answer == gate.PASS, answer.text()
        answer.raise_unless_pass()  # no exception
    # On R535 the matrix's rule is CUDA 12.x minor-version compatibility: a pass, with its caveat named.
    old = gate.check(
        labels, gate.instance_target("g6.xlarge", "aws", provider_image_id="eks-al2-gpu-v20240522")
    )
    assert old.answer == gate.PASS and Code.MINOR_VERSION_COMPATIBLE in old.codes


def test_the_default_image_of_a_target_is_the_providers_current_one(plan: Catalog) -> None:
    eks = gate.instance_target("g6.xlarge", "aws")
    assert eks.provider_image is not None and eks.provider_image.id == "eks-al2023-nvidia-v20260714"
    assert gate.check(curated(plan, CU130), eks, image=CU130).answer == gate.PASS
    aks_a10 = gate.instance_target("Standard_NV36ads_A10_v5", "azure")
    assert (
        aks_a10.provider_image is not None and aks_a10.provider_image.id == "aks-gpu-grid"
    )  # A10 -> GRID driver
    answer = gate.check(curated(plan, CU130), aks_a10, image=CU130, curated=plan)
    assert answer.answer == gate.REFUSE and Code.DRIVER_TOO_OLD in answer.codes


def test_answers_unknown_not_pass_for_gke_without_driver_data(plan: Catalog) -> None:
    target = gate.instance_target("g2-standard-4", "gcp", target="k8s")
    assert target.provider_image is not None and target.provider_image.id == "gke-default"
    for tag in (CU130, CU126):  # even an image with an old floor: no data, no pass
        answer = gate.check(curated(plan, tag), target, image=tag, curated=plan)
        assert answer.answer == gate.UNKNOWN
        assert answer.codes == (Code.UNKNOWN_VERSION,)
        assert "gke-default ships a driver the data does not know (not found" in answer.reasons[0]
        assert "--nodes FILE -l label=value" in answer.reasons[0]
        with pytest.raises(gate.GateUnknown) as caught:
            answer.raise_unless_pass()
        assert caught.value.exit_code == EXIT_ENVIRONMENT
        assert "\n" not in caught.value.one_line()


def test_a_bare_branch_is_judged_at_both_ends(plan: Catalog) -> None:
    """SkyPilot's GCP image ships R580 with no point release: cu13.0 (floor 580.65.06) depends on it -> unknown;
    cu12.6 runs anywhere on R580 -> pass; on the pre-Turing R535 image cu13.0 fails at both ends -> refuse."""
    l4 = gate.instance_target("g2-standard-4", "gcp", target="sky")
    assert gate.check(curated(plan, CU130), l4, image=CU130).answer == gate.UNKNOWN
    assert gate.check(curated(plan, CU126), l4, image=CU126).answer == gate.PASS
    v100 = gate.instance_target("n1-standard-8+V100x1", "gcp", target="sky")
    answer = gate.check(curated(plan, CU130), v100, image=CU130, curated=plan)
    assert answer.answer == gate.REFUSE
    assert {Code.DRIVER_TOO_OLD, Code.NO_KERNEL_IMAGE} <= set(answer.codes)
    # A GPU the build has no kernels for: another instance, from the picker, for the image's build.
    assert any(
        f.startswith("another instance: ") and "imagesmith pick --gpus 1 --cloud gcp" in f
        for f in answer.fixes
    )


def test_a_cpu_image_passes_anywhere(plan: Catalog) -> None:
    base = "ghcr.io/acme/ml/base:py3.11-bookworm-r1"
    target = gate.instance_target("g2-standard-4", "gcp")
    assert gate.check(curated(plan, base), target, image=base).answer == gate.PASS


# ---- a node pool ---------------------------------------------------------------------------------------------


def test_refuses_cu130_on_the_recorded_535_pool_with_the_fleets_codes_and_a_fix(plan: Catalog) -> None:
    from imagesmith.fleet.gfd import nodes_of
    from imagesmith.fleet.verdict import image_on_node

    pool = gate.pool_target(str(NODES), "eks.amazonaws.com/nodegroup=a100-535")
    assert [n.name for n in pool.nodes] == ["gpu-a100-535-a", "gpu-a100-535-b"]
    labels = curated(plan, CU130)
    answer = gate.check(labels, pool, image=CU130, curated=plan)
    assert answer.answer == gate.REFUSE and Code.DRIVER_TOO_OLD in answer.codes
    assert answer.fixes and answer.fixes[0].startswith(f"build the dev image on the curated image {CU126}")
    # The same verdict and codes as `imagesmith fleet` gives on those nodes.
    kb = knowledge.load()
    for node in nodes_of(json.loads(NODES.read_text())["items"]):
        if node.name in ("gpu-a100-535-a", "gpu-a100-535-b"):
            fleet = image_on_node(kb, labels, node)
            assert fleet.verdict == "fails"
            assert set(answer.codes) == {r.code for r in fleet.reasons if r.severity != "info"}


def test_passes_cu128_on_the_recorded_570_pool() -> None:
    pool = gate.pool_target(str(NODES), "eks.amazonaws.com/nodegroup=h100-570")
    assert gate.check(torch_labels("cu128"), pool).answer == gate.PASS
    refused = gate.check(torch_labels("cu130"), pool)
    assert refused.answer == gate.REFUSE and Code.DRIVER_TOO_OLD in refused.codes


def test_a_mixed_pool_passes_with_a_note_on_the_failing_nodes() -> None:
    from imagesmith.contract.record import replace

    # cu128 declaring its toolkit's own driver floor (no minor-version compatibility): 570+ only.
    labels = torch_labels("cu128")
    strict = replace(labels, min_driver=labels.full_driver)
    pool = gate.pool_target(str(NODES), "nvidia.com/gpu.present=true")
    answer = gate.check(strict, pool)
    assert answer.answer == gate.PASS
    assert any("gpu-a100-535-a" in n and "gpu-h100-570-a" not in n for n in answer.notes)


def test_no_matching_node_is_bad_input() -> None:
    with pytest.raises(ImagesmithError, match="no node matches") as caught:
        gate.pool_target(str(NODES), "eks.amazonaws.com/nodegroup=nope")
    assert caught.value.exit_code == EXIT_BAD_INPUT


# ---- the command ---------------------------------------------------------------------------------------------


def run(args: list[str]) -> tuple[int, str, str]:
    """``gate_command`` as `imagesmith dev gate` runs it: (exit code, stdout, the one error line)."""
    result = CliRunner().invoke(gate_command, args, standalone_mode=False)
    exc = result.exception
    if exc is None:
        return 0, result.output, ""
    assert isinstance(exc, ImagesmithError), repr(exc)
    return exc.exit_code, result.output, exc.one_line()


def test_the_command_has_distinct_exit_codes_and_one_line_errors() -> None:
    code, out, err = run(["--image", EMBEDDED_CU126, "--instance", "g6.xlarge", "--cloud", "aws"])
    assert code == 0 and out.startswith(f"pass: {EMBEDDED_CU126} on aws g6.xlarge") and err == ""
    code, out, err = run(
        [
            "--image",
            EMBEDDED_CU130,
            "--instance",
            "g6.xlarge",
            "--cloud",
            "aws",
            "--provider-image",
            "eks-al2-gpu-1.32-v20251209",
        ]
    )
    assert code == EXIT_NEGATIVE and "[DRIVER_TOO_OLD]" in err and "\n" not in err
    code, out, err = run(["--image", EMBEDDED_CU130, "--instance", "g2-standard-4", "--cloud", "gcp"])
    assert code == EXIT_ENVIRONMENT and err.startswith("unknown:") and "[UNKNOWN_VERSION]" in err
    code, out, err = run(
        [
            "--image",
            EMBEDDED_CU130,
            "--nodes",
            str(NODES),
            "-l",
            "eks.amazonaws.com/nodegroup=a100-535",
            "--json",
        ]
    )
    assert code == EXIT_NEGATIVE
    payload: dict[str, Any] = json.loads(out)
    assert payload["answer"] == "refuse" and payload["codes"] == ["DRIVER_TOO_OLD"] and payload["fixes"]
    assert {j["node"] for j in payload["judged"]} == {"gpu-a100-535-a", "gpu-a100-535-b"}
    code, _, err = run(["--image", EMBEDDED_CU130, "--instance", "g6.nope", "--cloud", "aws"])
    assert code == EXIT_BAD_INPUT and "unknown aws instance type 'g6.nope'" in err
    code, _, err = run(["--image", EMBEDDED_CU130, "--instance", "g6.xlarge", "--provider-image", "eks-al2"])
    assert code == EXIT_BAD_INPUT and "--provider-image" in err
    code, _, err = run(["--image", EMBEDDED_CU130, "--nodes", str(NODES)])
    assert code == EXIT_BAD_INPUT and "-l label=value" in err


def test_the_gate_answers_in_milliseconds(plan: Catalog) -> None:
    """The gate's answer time (reported in the closing note): loading excluded, the check itself."""
    labels = curated(plan, CU130)
    gate.check(labels, gate.instance_target("g6.xlarge", "aws"), image=CU130, curated=plan)  # warm the caches
    times = []
    for provider_image in ("eks-al2023-nvidia-v20260714", "eks-al2-gpu-v20240522"):
        target = gate.instance_target("g6.xlarge", "aws", provider_image_id=provider_image)
        started = time.perf_counter()
        answer = gate.check(labels, target, image=CU130, curated=plan)
        times.append(time.perf_counter() - started)
        assert answer.seconds <= times[-1]
    pool = gate.pool_target(str(NODES), "eks.amazonaws.com/nodegroup=a100-535")
    started = time.perf_counter()
    gate.check(labels, pool, image=CU130, curated=plan)
    times.append(time.perf_counter() - started)
    assert max(times) < 0.5, times
