"""`pick` on the shipped catalog: the traps in the reference data, each answered the documented way."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema  # type: ignore[import-untyped]
import pytest

from imagesmith.errors import UnknownName, UsageError
from imagesmith.picker import catalog, pick
from imagesmith.picker.model import InstanceRow

SCHEMA = json.loads((Path(__file__).parent / "pick.schema.json").read_text())


def test_cheapest_whole_gpu_defaults_to_x86_and_names_cheaper_arm(shipped: catalog.Catalog) -> None:
    r = pick(gpus="1", catalog=shipped)
    assert r.choice is not None and r.choice.arch == "x86_64"
    cheapest = min(
        (x for x in shipped.rows if x.service != "sagemaker" and x.gpu_count >= 1 and x.price_on_demand),
        key=lambda x: x.price_on_demand or 0,
    )
    assert cheapest.arch == "arm64"  # g5g.xlarge: the data still holds the trap this default answers
    rejected = {x.row.instance_type: [f.constraint for f in x.failed] for x in r.rejected}
    assert rejected[cheapest.instance_type] == ["arch"]
    assert pick(gpus="1", arch="any", catalog=shipped).choice == cheapest


def test_tie_break_is_documented_order(shipped: catalog.Catalog) -> None:
    # g4dn.xlarge and Azure NC4as_T4_v3 both cost 0.526: cloud name decides (aws < azure).
    r = pick(gpus="1", gpu="T4", catalog=shipped)
    assert r.choice is not None and (r.choice.instance_type, r.alternatives[0].instance_type) == (
        "g4dn.xlarge",
        "Standard_NC4as_T4_v3",
    )
    # g5g.16xlarge and g5g.metal: same price and specs; the name decides.
    r = pick(gpus="2", gpu="T4G", arch="arm64", catalog=shipped)
    assert r.choice is not None and r.choice.instance_type == "g5g.16xlarge"
    assert r.alternatives[0].instance_type == "g5g.metal"


def test_gpu_memory_basis_changes_the_answer(shipped: catalog.Catalog) -> None:
    nominal = pick(gpus="1", gpu_memory="24+", cloud="aws", catalog=shipped)
    reported = pick(gpus="1", gpu_memory="24+", gpu_memory_basis="reported", cloud="aws", catalog=shipped)
    assert nominal.choice is not None and nominal.choice.gpu_model in ("L4", "A10G")
    assert reported.choice is not None and reported.choice.gpu_memory_gib_each is not None
    assert reported.choice.gpu_memory_gib_each >= 24 and reported.choice.gpu_model not in ("L4", "A10G")


def test_fractional_needs_the_flag(shipped: catalog.Catalog) -> None:
    r = pick(gpus="..1", gpu="L4", cloud="aws", catalog=shipped)
    assert r.choice is not None and not r.choice.gpu_fractional and r.choice.gpu_count == 1
    assert any(f.constraint == "allow_fractional" for x in r.rejected for f in x.failed)
    frac = pick(gpus="..1", gpu="L4", cloud="aws", allow_fractional=True, catalog=shipped)
    assert frac.choice is not None and frac.choice.gpu_fractional and frac.choice.gpu_count < 1
    # A whole-GPU request never lands on a partition, flag or not.
    whole = pick(gpus="1", allow_fractional=True, catalog=shipped)
    assert whole.choice is not None and whole.choice.gpu_count == 1


def test_missing_price_is_never_the_cheapest(shipped: catalog.Catalog) -> None:
    r = pick(gpu="H200", gpus="8", cloud="aws", catalog=shipped)
    assert r.choice is not None and r.choice.instance_type == "p5en.48xlarge"
    assert all(x.price_on_demand for x in (r.choice, *r.alternatives))


def test_burstable_chosen_unless_excluded(shipped: catalog.Catalog) -> None:
    r = pick(cpus="4+", memory="16+", catalog=shipped)
    assert r.choice is not None and r.choice.burstable
    r = pick(cpus="4+", memory="16+", no_burstable=True, catalog=shipped)
    assert r.choice is not None and not r.choice.burstable
    assert any(f.constraint == "no_burstable" for x in r.rejected for f in x.failed)


def test_cpu_question_returns_no_gpu_rows(shipped: catalog.Catalog) -> None:
    # --fit machine: the nameplate, as SkyPilot reads `8`.
    r = pick(cpus="8", memory="32", fit="machine", catalog=shipped)
    assert (
        r.choice is not None and r.choice.gpu_count == 0 and r.choice.vcpus == 8 and r.choice.memory_gib == 32
    )
    assert r.offer is None and all(x.gpu_count == 0 for x in r.alternatives)


def test_a_pods_request_is_held_to_what_the_node_offers_pods(shipped: catalog.Catalog) -> None:
    # The default: 8 CPUs and 32 GiB requested by a pod do not fit an 8-vCPU/32-GiB node (the kubelet keeps
    # some back), so the pick is a bigger node whose offer covers the request.
    r = pick(cpus="8", memory="32", catalog=shipped)
    assert r.choice is not None and r.offer is not None and r.choice.gpu_count == 0
    assert r.choice.vcpus > 8 and r.offer.cpus >= 8 and r.offer.memory_gib >= 32
    assert r.offer.allocatable_cpus < r.choice.vcpus and r.offer.cpus < r.offer.allocatable_cpus
    machine = pick(cpus="8", memory="32", fit="machine", catalog=shipped)
    assert machine.choice is not None and machine.choice.price_on_demand is not None
    assert r.choice.price_on_demand is not None and r.choice.price_on_demand > machine.choice.price_on_demand


def test_memory_ratio(shipped: catalog.Catalog) -> None:
    r = pick(cpus="4", memory="8x", catalog=shipped)
    assert r.choice is not None and r.choice.memory_gib >= 32


def test_spot_ranks_by_spot_and_skips_rows_without(shipped: catalog.Catalog) -> None:
    r = pick(gpus="1", gpu="T4", spot=True, catalog=shipped)
    assert r.choice is not None and r.choice.price_spot is not None
    rows = [x for x in shipped.rows if x.gpu_model == "T4" and x.gpu_count == 1 and x.price_spot is not None]
    assert r.choice.price_spot == min(x.price_spot or 0 for x in rows)
    assert r.to_json()["market"] == "spot"


def test_max_price_and_min_cc(shipped: catalog.Catalog) -> None:
    r = pick(gpus="1", min_cc="8.0", max_price=1.0, catalog=shipped)
    assert r.choice is not None and r.choice.price_on_demand is not None and r.choice.price_on_demand <= 1.0
    assert tuple(int(p) for p in r.choice.compute_capability.split(".")) >= (8, 0)
    none = pick(gpus="8", gpu="H100", max_price=10, catalog=shipped)
    assert none.choice is None and any(f.constraint == "max_price" for x in none.rejected for f in x.failed)


def test_nothing_fits_names_closest_and_constraints(shipped: catalog.Catalog) -> None:
    r = pick(gpu="H200", cloud="gcp", catalog=shipped)
    assert r.choice is None and r.rejected and r.catalog_date == shipped.catalog_date
    assert all(x.row.cloud == "gcp" and x.row.gpu_count > 0 for x in r.rejected)
    assert [f.constraint for f in r.rejected[0].failed] == ["gpu"]


def test_scope_and_sagemaker(shipped: catalog.Catalog) -> None:
    assert all(x.row.service != "sagemaker" for x in pick(gpus="1", top=50, catalog=shipped).rejected)
    r = pick(gpus="1", service="sagemaker", catalog=shipped)
    assert r.choice is not None and r.choice.instance_type.startswith("ml.")
    r = pick(gpus="1", region="eastus", catalog=shipped)
    assert r.choice is not None and r.choice.cloud == "azure"


def test_gpu_name_prefix_matches_variants(shipped: catalog.Catalog) -> None:
    r = pick(gpu="A100", gpus="8", top=20, catalog=shipped)
    models = {x.gpu_model for x in (r.choice, *r.alternatives) if isinstance(x, InstanceRow)}
    assert models == {"A100", "A100-80GB"}
    r = pick(gpu="A100-80GB", gpus="8", top=20, catalog=shipped)
    assert {x.gpu_model for x in (r.choice, *r.alternatives) if isinstance(x, InstanceRow)} == {"A100-80GB"}


def test_image_excludes_gpus_the_build_cannot_run(shipped: catalog.Catalog) -> None:
    # torch 2.11 cu128 dropped sm_70 (V100), per the matrix; cu126 still carries it.
    r = pick(gpu="V100", image="torch==2.11.0+cu128", catalog=shipped)
    assert r.choice is None and all(f.constraint == "image" for x in r.rejected for f in x.failed)
    ok = pick(gpu="V100", image="ghcr.io/acme/ml/torch:2.8.0-py3.11-cu12.8-runtime-bookworm", catalog=shipped)
    assert ok.choice is not None and ok.choice.gpu_model.startswith("V100")


@pytest.mark.parametrize(
    ("kwargs", "flag"),
    [
        ({"cpus": "lots"}, "--cpus"),
        ({"gpus": "0", "gpu": "T4"}, "--gpus"),
        ({"arch": "sparc"}, "--arch"),
        ({"max_price": "-1"}, "--max-price"),
        ({"gpu_memory_basis": "marketing"}, "--gpu-memory-basis"),
        ({"image": "ubuntu:22.04"}, "--image"),
    ],
)
def test_usage_errors_name_the_flag(shipped: catalog.Catalog, kwargs: dict[str, str], flag: str) -> None:
    with pytest.raises(UsageError) as info:
        pick(catalog=shipped, **kwargs)  # type: ignore[arg-type]
    assert flag in info.value.one_line()


@pytest.mark.parametrize(
    ("kwargs", "suggest"),
    [({"gpu": "H10"}, "H100"), ({"cloud": "aZ"}, "azure"), ({"region": "us-eastt-1"}, "us-east-1")],
)
def test_unknown_names_suggest(shipped: catalog.Catalog, kwargs: dict[str, str], suggest: str) -> None:
    with pytest.raises(UnknownName) as info:
        pick(catalog=shipped, **kwargs)  # type: ignore[arg-type]
    assert suggest in info.value.suggestions


def test_json_matches_schema(shipped: catalog.Catalog) -> None:
    for result in (pick(gpus="1", catalog=shipped), pick(gpu="H200", cloud="gcp", catalog=shipped)):
        doc = result.to_json()
        jsonschema.validate(doc, SCHEMA)
        assert json.loads(json.dumps(doc)) == doc


def test_result_is_frozen(shipped: catalog.Catalog) -> None:
    r = pick(gpus="1", catalog=shipped)
    with pytest.raises(AttributeError):
        r.choice = None  # type: ignore[misc]


def test_one_request_object_drives_the_cli_the_api_and_the_description(shipped: catalog.Catalog) -> None:

    from imagesmith.picker import PickRequest
    from imagesmith.picker.request import flags

    request = PickRequest(cpus="8", memory="32", arch="any")
    by_object = pick(request, catalog=shipped)
    by_keywords = pick(cpus="8", memory="32", arch="any", catalog=shipped)
    assert by_object.choice == by_keywords.choice and by_object.query == by_keywords.query
    assert by_object.query["cpus"] == "8" and by_object.query["arch"] == "any"
    # Every field is a flag of `imagesmith pick`, and nothing else is a constraint flag.
    import click

    from imagesmith.picker.cli import pick as pick_command

    options = {o for p in pick_command.params if isinstance(p, click.Option) for o in p.opts}
    assert {flag for _, flag, _ in flags()} == options - {"--json", "--format", "--catalog"}
    assert list(PickRequest.__record_fields__) == [name for name, _, _ in flags()]  # type: ignore[attr-defined]
    with pytest.raises(TypeError):
        pick(request, cpus="4", catalog=shipped)
