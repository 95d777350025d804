"""SkyPilot's generated catalogs as a provider source: real excerpts of the published vms.csv files, read by the
same `instances generate` (gates, overlays) as the price files."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from imagesmith.errors import DataError
from imagesmith.picker import catalog, generate, pick
from imagesmith.picker.model import InstanceRow

FIXTURES = Path(__file__).parent / "fixtures" / "skypilot"


@pytest.fixture
def rows(tmp_path: Path) -> dict[tuple[str, str, str], InstanceRow]:
    out = generate.generate(sources=FIXTURES, out_dir=tmp_path / "catalog")
    return {(r.instance_type, r.region, r.zone): r for r in out.rows}


def source_rows(name: str) -> list[dict[str, str]]:
    with (FIXTURES / name).open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_every_zone_is_a_row_with_its_own_spot_price(rows: dict[tuple[str, str, str], InstanceRow]) -> None:
    a = rows[("m6i.xlarge", "us-east-1", "use1-az1")]
    b = rows[("m6i.xlarge", "us-east-1", "use1-az2")]
    assert a.price_on_demand == b.price_on_demand == 0.192
    assert (a.price_spot, b.price_spot) == (0.0886, 0.0717)
    assert a.confidence == "high" and "@001367d2" in a.source and a.service == "ec2"


def test_architecture_follows_the_naming_rule(rows: dict[tuple[str, str, str], InstanceRow]) -> None:
    assert rows[("m7g.4xlarge", "ap-south-1", "aps1-az1")].arch == "arm64"  # g after the generation: Graviton
    assert rows[("m6i.xlarge", "us-east-1", "use1-az1")].arch == "x86_64"
    assert (
        rows[("g6.xlarge", "us-east-1", "use1-az1")].arch == "x86_64"
    )  # the g of the GPU family is no Graviton
    assert rows[("t3.xlarge", "us-east-1", "use1-az1")].burstable


def test_gpu_facts_come_from_the_row_and_the_overlays(rows: dict[tuple[str, str, str], InstanceRow]) -> None:
    g6 = rows[("g6.xlarge", "us-east-1", "use1-az1")]
    assert (g6.gpu_model, g6.gpu_count, g6.gpu_memory_gib_each, g6.gpu_memory_nominal_gb_each) == (
        "L4",
        1.0,
        round(22888 / 1024, 2),
        24.0,
    )
    assert g6.compute_capability == "8.9" and g6.cc_source == "matrix"
    # An empty SpotPrice in the source stays "no spot price", never 0.
    assert rows[("g6.xlarge", "us-west-2", "usw2-az2")].price_spot is None


def test_gcp_machines_are_priced_with_their_gpus(rows: dict[tuple[str, str, str], InstanceRow]) -> None:
    recs = source_rows("gcp-vms.csv")

    def price(itype: str, accel: str, zone: str) -> float:
        return next(
            float(r["Price"])
            for r in recs
            if r["InstanceType"] == itype and r["AcceleratorName"] == accel and r["AvailabilityZone"] == zone
        )

    a2 = rows[("a2-highgpu-1g", "us-central1", "us-central1-a")]
    assert a2.price_on_demand == pytest.approx(
        price("a2-highgpu-1g", "", "us-central1-a") + price("", "A100", "us-central1-a")
    )
    assert (a2.gpu_model, a2.gpu_count) == ("A100", 1.0)
    # No A100 row for that zone in the source: the machine is left out, never priced as its host alone.
    assert ("a2-highgpu-1g", "us-central1", "us-central1-c") not in rows
    assert ("a2-highgpu-1g", "europe-west4", "europe-west4-a") not in rows
    t4 = rows[("n1-standard-8+T4x1", "us-central1", "us-central1-a")]
    assert t4.price_on_demand == pytest.approx(
        price("n1-standard-8", "", "us-central1-a") + price("", "T4", "us-central1-a")
    )
    assert ("n1-standard-8+T4x1", "us-central1", "us-central1-b") not in rows  # no T4 row there
    host = rows[("n1-standard-8", "us-central1", "us-central1-b")]
    assert host.gpu_count == 0 and host.price_on_demand == 0.38


def test_zone_and_region_filters_and_the_answer_names_where_it_priced(tmp_path: Path) -> None:
    generate.generate(sources=FIXTURES, out_dir=tmp_path / "c")
    cat = catalog.load(tmp_path / "c")
    r = pick(cpus="4", memory="16", fit="machine", zone="use1-az2", catalog=cat)
    assert r.choice is not None and (r.choice.region, r.choice.zone) == ("us-east-1", "use1-az2")
    # The same type in other zones is not an alternative: alternatives are other machines.
    everywhere = pick(cpus="4", memory="16", fit="machine", no_burstable=True, catalog=cat)
    assert everywhere.choice is not None and everywhere.choice.instance_type == "m6i.xlarge"
    types = [a.instance_type for a in everywhere.alternatives]
    assert len(types) == len(set(types)) and "m6i.xlarge" not in types
    spot = pick(cpus="4", memory="16", fit="machine", no_burstable=True, spot=True, catalog=cat)
    assert spot.choice is not None and spot.choice.zone == "use1-az2"  # the cheaper zone's spot price
    assert set(spot.searched["regions"]) >= {"us-east-1", "ap-south-1", "us-central1"}
    assert spot.searched["zones"] >= 8


def test_a_spot_price_above_on_demand_is_dropped_with_a_note(tmp_path: Path) -> None:
    src = tmp_path / "src"
    shutil.copytree(FIXTURES, src)
    path = src / "aws-vms.csv"
    # Broken on purpose (seen in published catalogs): one zone's spot price above its on-demand price.
    path.write_text(
        path.read_text().replace("0.192,0.088600,us-east-1,use1-az1", "0.192,0.250000,us-east-1,use1-az1")
    )
    out = generate.generate(sources=src, out_dir=tmp_path / "c")
    row = next(r for r in out.rows if (r.instance_type, r.zone) == ("m6i.xlarge", "use1-az1"))
    assert row.price_spot is None and "above on-demand" in row.notes


def test_a_file_that_is_not_a_skypilot_catalog_is_named(tmp_path: Path) -> None:
    src = tmp_path / "src"
    shutil.copytree(FIXTURES, src)
    (src / "gcp-vms.csv").write_text("InstanceType,Price\nn1-standard-8,0.38\n")
    with pytest.raises(DataError) as info:
        generate.generate(sources=src, out_dir=tmp_path / "c")
    assert "gcp-vms.csv:1" in info.value.one_line() and "SkyPilot" in info.value.one_line()
    assert not (tmp_path / "c").exists()


def test_shipped_catalog_has_one_source_per_type_and_region() -> None:
    """Where a region's price file and the multi-region catalog both price a type, one of them stays (the more
    confident): a machine is never ranked by two dates at once."""
    seen: dict[tuple[str, str, str, str], set[str]] = {}
    for r in catalog.load().rows:
        seen.setdefault((r.cloud, r.service, r.region, r.instance_type), set()).add(r.source)
    mixed = {k: v for k, v in seen.items() if len(v) > 1}
    assert not mixed, list(mixed)[:3]
    g6 = [r for r in catalog.load().rows if r.instance_type == "g6.xlarge" and r.region == "us-east-1"]
    assert g6 and all(r.zone and r.confidence == "high" for r in g6)


def test_shipped_catalog_names_arm_machines_the_source_does_not_mark() -> None:
    rows = catalog.load().rows
    arch = {(r.cloud, r.instance_type): r.arch for r in rows}
    assert arch[("aws", "m7g.4xlarge")] == arch[("aws", "c7g.4xlarge")] == "arm64"  # the AWS naming rule
    assert arch[("azure", "Standard_D16ps_v5")] == "arm64"  # overlays/arch.csv: Ampere Altra
    assert arch[("azure", "Standard_D16as_v5")] == arch[("aws", "m7a.4xlarge")] == "x86_64"
    h100 = [r for r in rows if r.instance_type == "Standard_ND96isr_H100_v5"]
    # SkyPilot's (fork) catalog says 12 GPUs; the overlay row naming that error wins: 8.
    assert h100 and all(r.gpu_count == 8 for r in h100)
