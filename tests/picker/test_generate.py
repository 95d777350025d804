"""`instances generate` on provider-format fixtures: parsing, filters, composition, and every gate."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from imagesmith.errors import DataError
from imagesmith.picker import catalog, generate
from imagesmith.picker.model import InstanceRow

FIXTURES = Path(__file__).parent / "fixtures" / "providers"


def _rows(directory: Path) -> dict[str, InstanceRow]:
    return {r.instance_type: r for r in catalog.read_rows(directory / "catalog.csv")}


def _edit(path: Path, change: Any) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def test_aws_offer_filters_keep_only_linux_shared_boxusage(tmp_path: Path) -> None:
    generate.generate(sources=FIXTURES, out_dir=tmp_path)
    rows = _rows(tmp_path)
    # Windows 1.19, dedicated 1.11, SQL 1.30 and the $0 unused-reservation SKU are all in the file.
    assert rows["g5.xlarge"].price_on_demand == 1.006
    assert rows["g5.xlarge"].price_spot == 0.4246  # minimum over the AZs, Windows spot ignored
    assert rows["m6i.metal"].price_on_demand == 6.144  # bare-metal product family kept


def test_missing_price_stays_empty_never_zero(tmp_path: Path) -> None:
    generate.generate(sources=FIXTURES, out_dir=tmp_path)
    p5e = _rows(tmp_path)["p5e.48xlarge"]
    assert p5e.price_on_demand is None and p5e.gpu_model == "H200" and p5e.gpu_count == 8
    line = next(
        x
        for x in (tmp_path / "catalog.csv").read_text().splitlines()
        if x.startswith("aws,ec2,us-east-1,p5e")
    )
    assert ",0," not in line.split("H200")[1].split(",matrix,")[1][:3]


def test_fractional_gpu_from_partition_size(tmp_path: Path) -> None:
    generate.generate(sources=FIXTURES, out_dir=tmp_path)
    g6f = _rows(tmp_path)["g6f.large"]
    # The API says Count 0; the catalog keeps the fraction and both memory figures for the partition.
    assert (g6f.gpu_count, g6f.gpu_fractional) == (0.125, True)
    assert (g6f.gpu_memory_gib_each, g6f.gpu_memory_nominal_gb_each) == (2.79, 3.0)


def test_gpu_memory_reported_and_nominal_both_kept(tmp_path: Path) -> None:
    generate.generate(sources=FIXTURES, out_dir=tmp_path)
    g5 = _rows(tmp_path)["g5.xlarge"]
    assert (g5.gpu_memory_gib_each, g5.gpu_memory_nominal_gb_each) == (22.35, 24.0)


def test_burstable_from_spec_and_arch(tmp_path: Path) -> None:
    generate.generate(sources=FIXTURES, out_dir=tmp_path)
    rows = _rows(tmp_path)
    assert rows["t3.xlarge"].burstable and not rows["m6i.large"].burstable


def test_sagemaker_csv_offer_training_rate_with_ec2_twin_spec(tmp_path: Path) -> None:
    generate.generate(sources=FIXTURES, out_dir=tmp_path)
    ml = _rows(tmp_path)["ml.g5.xlarge"]
    assert ml.service == "sagemaker" and ml.price_on_demand == 1.41  # not the Hosting 1.45
    assert ml.gpu_model == "A10G" and ml.vcpus == 4


def test_offer_csv_and_json_give_the_same_rows(sources: Path, tmp_path: Path) -> None:
    generate.generate(sources=sources, out_dir=tmp_path / "json")
    _edit(
        sources / "manifest.json",
        lambda d: d["inputs"][0].update(format="aws-offer-csv", path="aws/ec2.offer.csv"),
    )
    generate.generate(sources=sources, out_dir=tmp_path / "csv")
    assert (tmp_path / "json" / "catalog.csv").read_text() == (tmp_path / "csv" / "catalog.csv").read_text()


def test_gcp_price_is_composed_from_core_ram_and_gpu_skus(tmp_path: Path) -> None:
    generate.generate(sources=FIXTURES, out_dir=tmp_path)
    rows = _rows(tmp_path)
    combo = rows["n1-standard-4+T4x1"]
    assert combo.price_on_demand == pytest.approx(4 * 0.031611 + 15 * 0.004237 + 0.35, abs=1e-6)
    assert rows["n1-standard-4"].price_on_demand == pytest.approx(4 * 0.031611 + 15 * 0.004237, abs=1e-6)
    # No T4 spot SKU: the composed spot price is unknown, not the host's spot alone.
    assert combo.price_spot is None and rows["n1-standard-4"].price_spot is not None
    # The DWS flex-start L4 SKU (0.2) and the São Paulo T4 SKU must not leak in.
    assert rows["g2-standard-4"].price_on_demand == pytest.approx(
        4 * 0.02498794 + 16 * 0.00292708 + 0.560040239, abs=1e-6
    )


def test_azure_filters_and_spot_sentinel(tmp_path: Path) -> None:
    generate.generate(sources=FIXTURES, out_dir=tmp_path)
    rows = _rows(tmp_path)
    t4 = rows["Standard_NC4as_T4_v3"]
    assert (t4.price_on_demand, t4.price_spot) == (0.526, 0.062699)  # not Windows, Low Priority, westus
    h100 = rows["Standard_ND96isr_H100_v5"]
    assert h100.price_spot is None and "sentinel" in h100.notes
    assert h100.gpu_count == 8 and h100.gpu_model == "H100"


def test_compute_capability_joined_from_matrix_with_overlay_fallback(shipped: catalog.Catalog) -> None:
    by_model = {r.gpu_model: r for r in shipped.rows if r.gpu_model}
    assert (by_model["L4"].compute_capability, by_model["L4"].cc_source) == ("8.9", "matrix")
    assert (by_model["T4G"].compute_capability, by_model["T4G"].cc_source) == ("7.5", "overlay")
    # ec2instances.info says 10.0 for g6f; an L4 partition is 8.9.
    g6f = [r for r in shipped.rows if r.instance_type.startswith("g6f.")]
    assert g6f and all(r.compute_capability == "8.9" for r in g6f)
    assert all(r.cc_source in ("matrix", "overlay") for r in shipped.rows if r.gpu_model)


def _fails(sources: Path, out: Path, needle: str, **kw: Any) -> None:
    with pytest.raises(DataError) as info:
        generate.generate(sources=sources, out_dir=out, **kw)
    assert needle in info.value.one_line()


@pytest.fixture
def good(tmp_path: Path) -> Path:
    out = tmp_path / "good"
    generate.generate(sources=FIXTURES, out_dir=out)
    return out


def _unchanged(out: Path, before: tuple[str, str]) -> None:
    assert ((out / "catalog.csv").read_text(), (out / "catalog.meta.json").read_text()) == before


def _snapshot(out: Path) -> tuple[str, str]:
    return (out / "catalog.csv").read_text(), (out / "catalog.meta.json").read_text()


def _set_od(sku: str, price: str) -> Any:
    def change(d: dict[str, Any]) -> None:
        term = next(iter(d["terms"]["OnDemand"][sku].values()))
        next(iter(term["priceDimensions"].values()))["pricePerUnit"]["USD"] = price

    return change


@pytest.mark.parametrize(("price", "needle"), [("0.0", "<= 0"), ("700.0", "placeholder")])
def test_gate_price_zero_or_placeholder_keeps_last_good(
    sources: Path, good: Path, price: str, needle: str
) -> None:
    before = _snapshot(good)
    _edit(sources / "aws" / "ec2.offer.json", _set_od("M6ILINUX000000001", price))
    _fails(sources, good, needle)
    _unchanged(good, before)


def test_gate_spot_above_on_demand(sources: Path, good: Path) -> None:
    before = _snapshot(good)
    _edit(sources / "aws" / "ec2.spot-prices.json", lambda d: d["SpotPriceHistory"].append(
        {"InstanceType": "m6i.large", "ProductDescription": "Linux/UNIX", "SpotPrice": "0.5"}))  # fmt: skip
    _fails(sources, good, "spot 0.5 > on-demand 0.096")
    _unchanged(good, before)


def test_gate_gpu_count_against_overlay(sources: Path, good: Path) -> None:
    # SkyPilot's Azure fork catalog says 12 GPUs for ND96isr_H100_v5; the overlay knows it is 8.
    def twelve(d: list[dict[str, Any]]) -> None:
        caps = next(s for s in d if s["name"] == "Standard_ND96isr_H100_v5")["capabilities"]
        next(c for c in caps if c["name"] == "GPUs")["value"] = "12"

    _edit(sources / "azure" / "resource-skus.json", twelve)
    before = _snapshot(good)
    _fails(sources, good, "Resource SKU says 12 GPUs, overlay instance_gpus.csv says 8")
    _unchanged(good, before)


def test_gate_total_memory_reported_as_per_gpu(sources: Path, good: Path) -> None:
    def total(d: dict[str, Any]) -> None:
        p5e = next(t for t in d["InstanceTypes"] if t["InstanceType"] == "p5e.48xlarge")
        p5e["GpuInfo"]["Gpus"][0]["MemoryInfo"]["SizeInMiB"] = 1155072

    _edit(sources / "aws" / "ec2.instance-types.json", total)
    _fails(sources, good, "is one of them a total?")


def test_gate_row_count_collapse(sources: Path, good: Path) -> None:
    _edit(
        sources / "manifest.json",
        lambda d: d.update(inputs=[i for i in d["inputs"] if i["cloud"] == "azure"]),
    )
    before = _snapshot(good)
    _fails(sources, good, "collapsed fetch")
    _unchanged(good, before)
    outcome = generate.generate(sources=sources, out_dir=good, allow_shrink=True)
    assert len(outcome.rows) == 2 and len(catalog.load(good).rows) == 2


def test_gate_conflicting_skus_refuse_last_write_wins(sources: Path, good: Path) -> None:
    def dup(d: dict[str, Any]) -> None:
        d["products"]["G5WINDOWS00000001"]["attributes"]["operatingSystem"] = "Linux"

    _edit(sources / "aws" / "ec2.offer.json", dup)
    _fails(sources, good, "two SKUs survive the filters with different prices")


def test_gate_gcp_sku_collision(sources: Path, good: Path) -> None:
    def collide(d: dict[str, Any]) -> None:
        extra = json.loads(json.dumps(d["skus"][4]))
        extra["pricingInfo"][0]["pricingExpression"]["tieredRates"][0]["unitPrice"]["nanos"] = 100000000
        d["skus"].append(extra)

    _edit(sources / "gcp" / "skus.json", collide)
    _fails(sources, good, "SKU collision")


def test_gate_azure_incomplete_pages(sources: Path, good: Path) -> None:
    _edit(sources / "manifest.json", lambda d: d["inputs"][6].update(pages=["azure/page1.json"]))
    _fails(sources, good, "no next page was fetched", allow_shrink=True)


def test_gate_overlay_capability_must_agree_with_matrix(sources: Path, tmp_path: Path) -> None:
    import shutil

    from imagesmith.picker import overlays

    ov = tmp_path / "overlays"
    shutil.copytree(overlays.OVERLAY_DIR, ov)
    text = (
        (ov / "gpus.csv")
        .read_text()
        .replace("L4,nvidia,L4;nvidia-l4,L4,24,8.9", "L4,nvidia,L4;nvidia-l4,L4,24,10.0")
    )
    (ov / "gpus.csv").write_text(text)
    with pytest.raises(DataError) as info:
        generate.generate(sources=sources, out_dir=tmp_path / "out", overlay_dir=ov)
    assert "overlay compute capability 10.0 disagrees with the matrix" in info.value.one_line()
    assert not (tmp_path / "out").exists()


def test_bad_json_names_the_file_and_line(sources: Path, good: Path) -> None:
    (sources / "gcp" / "skus.json").write_text('{"skus": [\n  {,}\n]}')
    with pytest.raises(DataError) as info:
        generate.generate(sources=sources, out_dir=good)
    assert "skus.json:2" in info.value.one_line()


def test_shipped_catalog_regenerates_identically(tmp_path: Path, shipped: catalog.Catalog) -> None:
    outcome = generate.generate(out_dir=tmp_path)
    assert (tmp_path / "catalog.csv").read_text() == (Path(catalog.DATA_DIR) / "catalog.csv").read_text()
    assert outcome.meta["catalog_sha256"] == shipped.meta["catalog_sha256"]
    assert outcome.meta["sources"] == shipped.meta["sources"]
