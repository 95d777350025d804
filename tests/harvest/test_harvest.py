"""`imagesmith matrix harvest` on real artifacts of the real index: nvcc's own target lists from the
nvidia-cuda-nvcc wheels, framework wheel metadata (PEP 658), fatbins of gcc-built ELF files, and the
comparison with the data (a contradiction planted in a copy of the data is found, with both values)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from imagesmith.harvest import compare, deep, facts, nvcc, run
from imagesmith.harvest.pypi import Index
from imagesmith.matrix import knowledge
from imagesmith.matrix.knowledge import DATA_DIR
from imagesmith.matrix.versions import NvVersion
from tests.doctor.conftest import fatbin_blob, gcc

CA = Path("/etc/ssl/certs/ca-certificates.crt")


@pytest.fixture(scope="module")
def index() -> Index:
    return Index(ca_cert=CA)


def _by_key(found: tuple[facts.Fact, ...]) -> dict[str, facts.Fact]:
    return {f.key: f for f in found}


def test_nvcc_13_lists_its_targets_and_the_data_is_compared_with_them(index: Index) -> None:
    found = _by_key(nvcc.harvest(index, "13.0"))
    targets = found["targets"].value.split()
    # nvcc 13.0 itself: Turing and newer, with sm_88 and sm_110 (Thor); no Volta.
    assert {"7.5", "8.8", "11.0", "12.1"} <= set(targets) and "7.0" not in targets
    artifact = nvcc.newest_artifact(index, "13.0")
    assert found["targets"].provenance == facts.Provenance(artifact=artifact.filename, sha256=artifact.sha256)
    assert found["toolkit"].value == artifact.version and artifact.version.startswith("13.0.")
    kb = knowledge.load()
    finding = next(f for f in compare.compare(kb, found.values()) if f.key == "targets")
    row = kb.nvcc_capabilities(NvVersion.parse("13.0"))
    assert row is not None
    data = {str(c) for c in row.capabilities}
    assert finding.status == ("confirmed" if data == set(targets) else "contradicted")
    assert finding.where == row.provenance.where


def test_cuda_12_compiler_wheel_is_read_through_ptxas(index: Index) -> None:
    found = _by_key(nvcc.harvest(index, "12.9"))
    assert found["how"].value == "ptxas --help (--gpu-name)"
    assert {"5.0", "7.0", "9.0", "10.3", "12.1"} <= set(found["targets"].value.split())


def test_a_planted_contradiction_is_found_with_both_values(index: Index, tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(DATA_DIR, data)
    cuda = data / "cuda.toml"
    text = cuda.read_text()
    row = 'since        = "12.9"\ncapabilities = ["5.0", "5.2", "5.3", "6.0", "6.1", "6.2", "7.0", "7.2", "7.5", "8.0", '
    assert row in text
    cuda.write_text(text.replace(row, row.replace('"7.0", "7.2", ', ""), 1))
    finding = next(
        f for f in compare.compare(knowledge.load(data), nvcc.harvest(index, "12.9")) if f.key == "targets"
    )
    assert finding.status == "contradicted"
    assert finding.data is not None and finding.data.endswith("; lacks 7.0 7.2")
    assert (
        "7.0 7.2" in finding.artifact and finding.where is not None and finding.where.startswith("cuda.toml:")
    )


def test_framework_metadata_without_the_wheel(tmp_path: Path) -> None:
    index = Index(ca_cert=CA, cache=tmp_path / "cache")
    found = run.harvest(index, run.Spec.parse("torch==2.13.0"), deep_scan=False)
    by_key = _by_key(found)
    artifact = run.linux_wheel(index, "torch", "2.13.0")
    assert by_key["cuda"].value.startswith("13.0.") and by_key["cudnn"].value.startswith("9.")
    assert by_key["python"].value.startswith(">=3.")
    assert {f.provenance.sha256 for f in found} == {artifact.sha256}
    assert (index.cache / "metadata" / f"{artifact.sha256}.METADATA").is_file()
    assert not (index.cache / "files").exists()  # the metadata alone was fetched, not the 900 MB wheel
    kb = knowledge.load()
    build = next(b for b in kb.builds("torch") if b.release == "2.13" and b.variant == "cu130")
    cuda = next(f for f in compare.compare(kb, found) if f.key == "cuda")
    same = ".".join(by_key["cuda"].value.split(".")[:2]) == ".".join(str(build.cuda).split(".")[:2])
    assert cuda.status == ("confirmed" if same else "contradicted") and cuda.data == str(build.cuda)


def test_jax_plugin_ranges_are_reported_as_they_are(index: Index) -> None:
    by_key = _by_key(run.harvest(index, run.Spec.parse("jax-cuda12-plugin==0.10.0"), deep_scan=False))
    assert by_key["cudnn"].value.startswith(("<", ">")) and by_key["cudnn.extra"].value == "with-cuda"


def test_deep_reads_the_fatbins_of_every_library_in_a_wheel(tmp_path: Path) -> None:
    libs = []
    # liba: four kernels for sm_80, sm_90 and sm_100 each, and one arch-specific sm_89 extra (not "built for").
    liba = [(2, 80), (2, 90), (2, 100)] * 4 + [(2, 89)]
    for name, entries in (("liba.so", liba), ("libb.so.12", [(2, 120), (1, 120)])):
        blob = fatbin_blob(entries)
        source = (
            '__attribute__((section(".nv_fatbin"))) const unsigned char fb[] = {'
            + ",".join(map(str, blob))
            + "};\n"
        )
        libs.append(gcc(tmp_path / name, source, soname=name))
    wheel = tmp_path / "fake_cuda_fw-1.0-cp311-cp311-manylinux_2_28_x86_64.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for lib in libs:
            archive.write(lib, f"fake_cuda_fw/lib/{lib.name}")
        archive.writestr("fake_cuda_fw/__init__.py", "")
    libraries = deep.scan_wheel(wheel)
    assert libraries == {"liba.so": ((80, 90, 100), (), 13), "libb.so.12": ((120,), (120,), 2)}
    assert deep.primary(libraries) == "liba.so"  # the library with the most kernels decides


def test_cli_check_and_bad_specs(index: Index) -> None:
    exe = str(Path(sys.executable).with_name("imagesmith"))
    done = subprocess.run(
        [exe, "matrix", "harvest", "--check", "--ca-cert", str(CA), "nvcc==12.9"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    stale = [s for s in run.staleness(index, knowledge.load()) if s.unknown]
    contradicted = [
        f
        for f in compare.compare(knowledge.load(), nvcc.harvest(index, "12.9"))
        if f.status == "contradicted"
    ]
    assert done.returncode == (1 if stale or contradicted else 0), done.stdout + done.stderr
    for s in stale:
        assert (
            f"STALE         {s.project}: on the index but not in the data: {', '.join(s.unknown)}"
            in done.stdout
        )
    bad = subprocess.run([exe, "matrix", "harvest", "torch>=2"], capture_output=True, text=True)
    assert (
        bad.returncode == 2
        and bad.stderr.count("\n") == 1
        and "SPEC: expected PROJECT or PROJECT==VERSION" in bad.stderr
    )
    missing = subprocess.run(
        [exe, "matrix", "harvest", "--ca-cert", str(CA), "torch==0.0.1"], capture_output=True, text=True
    )
    assert missing.returncode == 2 and "torch has no release 0.0.1 on the index" in missing.stderr


def test_write_adds_the_missing_row_once_with_its_provenance(index: Index, tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(DATA_DIR, data)
    cuda = data / "cuda.toml"
    text = cuda.read_text()
    # A copy of the data as it was before 13.4's row: the 13.4 and 13.5 compilers both differ from 13.0's.
    start = text.index('\n[[nvcc_targets]]\nsince        = "13.4"')
    end = text.find("\n[[", start + 5)
    text = text[:start] + (text[end:] if end != -1 else "\n")
    cuda.write_text("\n".join(line for line in text.split("\n") if not line.startswith("H1 = ")))
    exe = str(Path(sys.executable).with_name("imagesmith"))
    args = [
        exe,
        "matrix",
        "harvest",
        "--ca-cert",
        str(CA),
        "--data-dir",
        str(data),
        "nvcc==13.4",
        "nvcc==13.5",
    ]
    done = subprocess.run([*args, "--write"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "wrote nvcc 13.4 targets to cuda.toml (source H1)" in done.stdout
    assert "not written: nvcc 13.5 targets (the same as the row just written)" in done.stdout
    kb = knowledge.load(data)
    row = kb.nvcc_capabilities(NvVersion.parse("13.4"))
    assert row is not None and str(row.since) == "13.4" and row.provenance.confidence == "artifact"
    artifact = nvcc.newest_artifact(index, "13.4")
    assert artifact.sha256 in row.provenance.source[0] and artifact.filename in row.provenance.source[0]
    again = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert "2 confirmed, 0 contradicted, 0 new" in again.stdout, again.stdout


def test_the_pythons_a_release_ships_wheels_for_are_compared_with_the_data(index: Index) -> None:
    """torch 2.5.0 on the real index: Requires-Python says >=3.8, but its Linux wheels are cp39..cp313 and
    the data keeps 3.13 as experimental. The wheels decide; the looser metadata is only mentioned."""
    found = run.harvest(index, run.Spec(project="torch", version="2.5.0"), deep_scan=False)
    shipped = _by_key(found)["pythons"]
    assert shipped.value.split()[0] == "3.9" and "3.13" in shipped.value.split()
    kb = knowledge.load()
    by_key = {f.key: f for f in compare.compare(kb, found)}
    assert by_key["python (wheels)"].status == "confirmed"
    assert "3.13 (experimental)" in str(by_key["python (wheels)"].data)
    assert by_key["python (lowest)"].status == "info"
    # The same wheels against a release line that claims 3.8: contradicted, with both values.
    fake = tuple(
        facts.Fact(subject=f.subject, key=f.key, value="3.8 " + f.value, provenance=f.provenance)
        if f.key == "pythons"
        else f
        for f in found
    )
    wrong = {f.key: f for f in compare.compare(kb, fake)}["python (wheels)"]
    assert wrong.status == "contradicted" and wrong.artifact.startswith("3.8 3.9")


def test_cpython_tags_sort_as_versions() -> None:
    assert facts.cpythons(["cp310", "cp39", "py3", "cp313", "abi3", "cp310"]) == ("3.9", "3.10", "3.13")
