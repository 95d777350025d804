"""The build package's parts that need no engine: input hash, smoke verdicts, gzip sizes, CA server,
wheel placement and the manifest."""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import tarfile
import urllib.error
import urllib.request
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from imagesmith.builder import inputs, manifest, sizes, smoke, wheel
from imagesmith.builder.certserve import CertServer, read_pem
from imagesmith.builder.model import BUILT, FAILED, ImageResult, Package
from imagesmith.contract.labels import INPUT_HASH
from imagesmith.contract.plan_json import Framework
from imagesmith.errors import EnvironmentProblem, UsageError

PEM = b"-----BEGIN CERTIFICATE-----\nMIIBdummy\n-----END CERTIFICATE-----\n"


def _context(tmp_path: Path) -> tuple[Path, Path]:
    context = tmp_path / "ctx"
    context.mkdir()
    dockerfile = context / "Dockerfile"
    dockerfile.write_text("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n")
    (context / "files").mkdir()
    (context / "files" / "a.txt").write_text("a")
    return context, dockerfile


def _hash(context: Path, dockerfile: Path, **overrides: object) -> str:
    args: dict[str, object] = {
        "dockerfile": dockerfile,
        "context": context,
        "parent_id": "sha256:p",
        "build_args": {"BASE_IMAGE": "x", "CA_CERT_URL": "http://127.0.0.1:1/a"},
        "labels": {"l": "1"},
    }
    args.update(overrides)
    return inputs.input_hash(**args)  # type: ignore[arg-type]


def _wheel(path: Path, content: str, date: tuple[int, ...]) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(zipfile.ZipInfo("pkg/__init__.py", date_time=date), content)  # type: ignore[arg-type]


def test_input_hash_covers_what_lands_in_the_image(tmp_path: Path) -> None:
    context, dockerfile = _context(tmp_path)
    first = _hash(context, dockerfile)
    assert _hash(context, dockerfile) == first
    # The CA URL is transport only: a new port must not force a rebuild.
    assert _hash(context, dockerfile, build_args={"BASE_IMAGE": "x", "CA_CERT_URL": "http://o"}) == first
    assert _hash(context, dockerfile, parent_id="sha256:q") != first
    assert _hash(context, dockerfile, labels={"l": "2"}) != first
    assert _hash(context, dockerfile, build_args={"BASE_IMAGE": "x", "PIP_INDEX_URL": "u"}) != first
    (context / "files" / "a.txt").write_text("b")
    assert _hash(context, dockerfile) != first
    (context / "files" / "a.txt").write_text("a")
    (context / "files" / "a.txt").chmod(0o755)
    assert _hash(context, dockerfile) != first


def test_a_rebuilt_wheel_with_new_timestamps_hashes_the_same(tmp_path: Path) -> None:
    context, dockerfile = _context(tmp_path)
    (context / "wheels").mkdir()
    _wheel(context / "wheels" / "w.whl", "v = 1\n", (2020, 1, 1, 0, 0, 0))
    first = _hash(context, dockerfile)
    _wheel(context / "wheels" / "w.whl", "v = 1\n", (2024, 5, 5, 5, 5, 6))
    assert _hash(context, dockerfile) == first
    _wheel(context / "wheels" / "w.whl", "v = 2\n", (2024, 5, 5, 5, 5, 6))
    assert _hash(context, dockerfile) != first


def test_place_replaces_old_wheels_and_keeps_identical_ones(tmp_path: Path) -> None:
    source = tmp_path / "imagesmith-0.2.0-py3-none-any.whl"
    _wheel(source, "v = 1\n", (2020, 1, 1, 0, 0, 0))
    context = tmp_path / "ctx"
    (context / "wheels").mkdir(parents=True)
    _wheel(context / "wheels" / "imagesmith-0.1.0-py3-none-any.whl", "old\n", (2020, 1, 1, 0, 0, 0))
    placed = wheel.place(source, context)
    assert sorted(p.name for p in (context / "wheels").iterdir()) == [source.name]
    stamp = placed.stat().st_mtime_ns
    _wheel(source, "v = 1\n", (2023, 1, 1, 0, 0, 0))
    wheel.place(source, context)
    assert placed.stat().st_mtime_ns == stamp  # same members: left alone
    with pytest.raises(UsageError):
        wheel.place(tmp_path / "missing.whl", context)


def test_build_wheel_from_this_checkout_is_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    built = wheel.build_wheel()
    with zipfile.ZipFile(built) as archive:
        assert "imagesmith/builder/cli.py" in archive.namelist()
    assert built.is_relative_to(tmp_path / "imagesmith" / "wheels")


def _doctor(*libraries: dict[str, str]) -> str:
    return json.dumps({"schema": 1, "status": "error", "libraries": list(libraries)})


CUDART = {"name": "libcudart.so.12", "path": "/v/libcudart.so.12", "version": "12.9.79", "origin": "wheel"}


@pytest.mark.parametrize(
    ("stdout", "promised", "ok", "says"),
    [
        (_doctor(CUDART), "12.9", True, "libcudart 12.9.79"),
        (_doctor(CUDART), "12.4", False, "does not match the planned CUDA runtime 12.4"),
        (_doctor({**CUDART, "version": "12.90.1"}), "12.9", False, "does not match"),
        (_doctor(), "12.9", False, "found no libcudart"),
        (_doctor(), None, True, "doctor ran"),
        ("Traceback ...", None, False, "no JSON from doctor"),
        (json.dumps({"schema": 1}), None, False, "no 'libraries' list"),
    ],
)
def test_doctor_verdicts(stdout: str, promised: str | None, ok: bool, says: str) -> None:
    result = smoke.check_doctor(1, stdout, "", promised)
    assert result.ok is ok and says in result.detail


CUDNN = {"name": "libcudnn.so.9", "path": "/v/libcudnn.so.9", "version": "9.20.0.48", "origin": "wheel"}


@pytest.mark.parametrize(
    ("libraries", "ok", "says"),
    [
        ((CUDART, CUDNN), True, "libcudnn 9.20.0.48 (wheel)"),
        ((CUDART,), False, "found no libcudnn"),
        ((CUDART, {**CUDNN, "version": "8.9.7.29"}), False, "does not keep the promise cuDNN 9.20"),
        ((CUDART, {**CUDNN, "origin": "dpkg"}), False, "from dpkg"),
        (({**CUDART, "origin": "dpkg"}, CUDNN), False, "comes from dpkg, not the wheels"),
    ],
)
def test_doctor_checks_cudnn_and_origin(libraries: tuple[dict[str, str], ...], ok: bool, says: str) -> None:
    result = smoke.check_doctor(1, _doctor(*libraries), "", "12.9", "9.20.0.48")
    assert result.ok is ok and says in result.detail, result.detail


def test_framework_versions_verdicts() -> None:
    torch = Framework(name="torch", version="2.13.0", variant="cu130", import_name="torch")
    labels = {"io.imagesmith.cuda": "13.0.2", "io.imagesmith.cudnn": "9.20.0.48"}
    good = smoke.check_versions(torch, labels, 0, '{"cuda": "13.0", "cudnn": "9.20.0"}\n', "")
    assert good.ok and "cuda 13.0, cudnn 9.20.0" in good.detail
    wrong = smoke.check_versions(torch, labels, 0, '{"cuda": "12.8", "cudnn": "9.20.0"}', "")
    assert not wrong.ok and "reports cuda 12.8; the label says 13.0.2" in wrong.detail
    tf = Framework(name="tensorflow", version="2.21.0", variant="cuda", import_name="tensorflow")
    # TensorFlow says only the cuDNN major: compared on what both sides give.
    assert smoke.check_versions(
        tf, {**labels, "io.imagesmith.cuda": "12.5"}, 0, '{"cuda": "12.5.1", "cudnn": "9"}', ""
    ).ok
    # The cuDNN label is the build's floor within its major (pip may install a newer 9.x): JAX found 9.28.
    jax = Framework(name="jax", version="0.10.0", variant="cuda12", import_name="jax")
    jax_labels = {"io.imagesmith.cuda": "12.9.1", "io.imagesmith.cudnn": "9.8.0"}
    newer = smoke.check_versions(jax, jax_labels, 0, '{"cuda": "12.9", "cudnn": "9.28.0"}', "")
    assert newer.ok and "cudnn 9.28.0 (>= 9.8.0)" in newer.detail
    assert not smoke.check_versions(jax, jax_labels, 0, '{"cuda": "12.9", "cudnn": "9.7.1"}', "").ok
    assert not smoke.check_versions(jax, jax_labels, 0, '{"cuda": "12.9", "cudnn": "10.0.0"}', "").ok
    missing = smoke.check_versions(torch, labels, 0, '{"cuda": null, "cudnn": "9.20.0"}', "")
    assert not missing.ok and "reports no cuda" in missing.detail
    crashed = smoke.check_versions(torch, labels, 1, "", "ImportError: libcudnn.so.9")
    assert not crashed.ok and "libcudnn.so.9" in crashed.detail


def test_duplicate_verdicts() -> None:
    site = "/opt/venv/lib/python3.11/site-packages"
    once = {"libcudart": [f"{site}/nvidia/cu13/lib/libcudart.so.13"]}
    assert smoke.check_duplicates(0, json.dumps(once), "").ok
    twice = {
        "libcublas": [f"{site}/nvidia/cu13/lib/libcublas.so.13", "/usr/local/cuda-13.0/lib64/libcublas.so.13"]
    }
    result = smoke.check_duplicates(0, json.dumps(twice), "")
    assert not result.ok and "libcublas" in result.detail and "/usr/local/cuda-13.0" in result.detail
    private = {
        "libcupti": [
            f"{site}/nvidia/cu13/lib/libcupti.so.13",
            f"{site}/triton/backends/nvidia/lib/cupti/libcupti.so.12",
        ]
    }
    allowed = smoke.check_duplicates(0, json.dumps(private), "")
    assert allowed.ok and "private copies loaded by path: 1" in allowed.detail
    assert not smoke.check_duplicates(1, "", "Traceback").ok


def test_command_verdicts() -> None:
    assert smoke.check_command(
        "nvcc-compile", 0, "CUDA_HOME=/usr/local/cuda\ncompiled 10 bytes\n", ""
    ).detail == ("compiled 10 bytes")
    failed = smoke.check_command("nvcc-compile", 1, "", "ptxas fatal   : Unsupported .version 9.5\n")
    assert not failed.ok and "Unsupported .version 9.5" in failed.detail


def test_label_verdicts() -> None:
    planned = {"a": "1", "b": "2"}
    hash_label = {INPUT_HASH: "sha256:x"}
    assert smoke.check_labels({**planned, **hash_label}, planned, {}).ok
    assert smoke.check_labels({**planned, "c": "3"}, planned, {"c": "3"}).ok  # inherited unchanged
    bad = smoke.check_labels({"a": "1", "b": "3", "d": "4"}, planned, {"d": "5"})
    assert not bad.ok
    assert bad.detail == "b='3', planned '2'; unplanned label d='4'"
    assert "b missing" in smoke.check_labels({"a": "1"}, planned, {}).detail


def test_framework_verdicts() -> None:
    torch = Framework(name="torch", version="2.8.0", variant="cu128", import_name="torch")
    assert smoke.check_framework(torch, 0, "2.8.0+cu128\n", "").ok
    assert not smoke.check_framework(torch, 0, "2.7.1+cu128\n", "").ok
    failed = smoke.check_framework(torch, 1, "", "Traceback\nImportError: libcudnn.so.9: cannot open\n")
    assert not failed.ok and "libcudnn.so.9" in failed.detail


def test_gzip_size_matches_the_gzip_module_and_the_cache_skips_save(tmp_path: Path) -> None:
    layer = os.urandom(300_000) + b"\0" * 2_000_000
    outer = io.BytesIO()
    with tarfile.open(fileobj=outer, mode="w") as archive:
        for name, data in (("abc/layer.tar", layer), ("manifest.json", b"[]")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    import hashlib

    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    cache = sizes.LayerSizeCache(tmp_path / "sizes.json")
    calls: list[int] = []

    def save() -> list[bytes]:
        calls.append(1)
        raw = outer.getvalue()
        return [raw[i : i + 4096] for i in range(0, len(raw), 4096)]

    expected = len(gzip.compress(layer, compresslevel=6, mtime=0))
    assert sizes.compressed_size((diff_id, diff_id), save, cache) == 2 * expected
    assert sizes.compressed_size((diff_id,), save, cache) == expected
    assert calls == [1]
    assert json.loads((tmp_path / "sizes.json").read_text()) == {diff_id: expected}


def test_human_sizes() -> None:
    assert [sizes.human(n) for n in (None, 999, 1500, 2_500_000, 3_200_000_000)] == [
        "-",
        "999 B",
        "1.5 kB",
        "2.5 MB",
        "3.2 GB",
    ]


def test_cert_server_serves_only_its_path_and_the_url_is_stable(tmp_path: Path) -> None:
    with CertServer(PEM) as server:
        url = server.url
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(url) as response:
            assert response.read() == PEM
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(url.rsplit("/", 2)[0] + "/other/ca.pem")
    with CertServer(PEM) as again:
        assert again.url == url  # same certificate, same URL: the engine's layer cache stays valid
        with CertServer(PEM) as concurrent:
            assert concurrent.url != url  # the preferred port is taken: any free one
    (tmp_path / "not.pem").write_text("hello")
    with pytest.raises(UsageError) as info:
        read_pem(tmp_path / "not.pem")
    assert info.value.where == f"--ca-cert {tmp_path / 'not.pem'}"


def test_manifest_json_and_markdown(tmp_path: Path) -> None:
    results = [
        ImageResult(
            name="base",
            tag="r/base:1",
            aliases=("r/base:latest",),
            parent=None,
            base_ref="debian:bookworm",
            status=BUILT,
            seconds=3.0,
            log_path=tmp_path / "logs" / "base.log",
            image_id="sha256:" + "a" * 64,
            size=2_000_000,
            parent_size=1_000_000,
            compressed_size=900_000,
            labels={"k": "v"},
            tests=(smoke.TestResult(name="labels", ok=True, detail="1 planned labels present"),),
            packages=(Package(name="pip", version="23", size=100),),
        ),
        ImageResult(
            name="child",
            tag="r/child:1",
            aliases=(),
            parent="base",
            base_ref="r/base:1",
            status=FAILED,
            seconds=1.0,
            log_path=tmp_path / "logs" / "child.log",
            failed_step="Step 3/4 : RUN false",
            error="The command '/bin/sh -c false' returned a non-zero code: 1",
        ),
    ]
    path = manifest.write(
        tmp_path,
        results,
        plan=Path("plan.json"),
        engine="unix:///x",
        started=datetime(2025, 1, 1, tzinfo=UTC),
    )
    data = json.loads(path.read_text())
    assert data["images"][0]["added_size"] == 1_000_000
    assert data["images"][0]["log"] == "logs/base.log"
    assert data["images"][1]["failed_step"] == "Step 3/4 : RUN false"
    markdown = (tmp_path / "manifest.md").read_text()
    assert "| base | built | `r/base:1` | aaaaaaaaaaaa | - | 900.0 kB | 2.0 MB | labels ok |" in markdown
    assert "**Failed** at `Step 3/4 : RUN false`" in markdown


def _checkout(root: Path, version: str) -> Path:
    """A source checkout of imagesmith ``version`` as git sees it: committed, so clean."""
    (root / "imagesmith").mkdir(parents=True)
    (root / "imagesmith" / "__init__.py").write_text(f'__version__ = "{version}"\n')
    (root / "pyproject.toml").write_text(f'[project]\nname = "imagesmith"\nversion = "{version}"\n')
    env = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@x",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@x",
    }
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "release"]):
        subprocess.run(["git", *args], cwd=root, check=True, env={**os.environ, **env})
    return root


def test_the_pinned_release_is_never_a_dirty_checkout_under_release_tags(tmp_path: Path) -> None:
    checkout = _checkout(tmp_path / "src", "7.1.0")
    assert wheel.uncommitted_changes(checkout) == [] and wheel.checkout_version(checkout) == "7.1.0"
    (checkout / "imagesmith" / "__init__.py").write_text('__version__ = "7.1.0"  # a local change\n')
    assert wheel.uncommitted_changes(checkout) == ["imagesmith/__init__.py"]
    warned: list[str] = []
    with pytest.raises(UsageError) as refused:
        wheel.for_release("7.1.0", push=True, given=None, warn=warned.append, checkout=checkout)
    line = refused.value.one_line()
    assert "uncommitted changes (imagesmith/__init__.py)" in line and "not release 7.1.0" in line
    assert "nothing built or pushed" in line and line.startswith(str(checkout))


def test_a_given_wheel_must_be_the_pinned_release(tmp_path: Path) -> None:
    other = tmp_path / "imagesmith-7.0.0-py3-none-any.whl"
    _wheel(other, "v = 1\n", (2020, 1, 1, 0, 0, 0))
    with pytest.raises(UsageError) as refused:
        wheel.for_release("7.1.0", push=False, given=other, warn=print)
    assert "the wheel is imagesmith 7.0.0, the policy pins 7.1.0" in refused.value.one_line()
    assert wheel.for_release("7.0.0", push=True, given=other, warn=print) == other


def test_a_release_the_index_does_not_have_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another version than the checkout's comes from the package index; here an index (a find-links folder)
    that does not have it."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path))
    checkout = _checkout(tmp_path / "src", "7.1.0")
    with pytest.raises(EnvironmentProblem) as missing:
        wheel.for_release("7.2.0", push=False, given=None, warn=print, checkout=checkout)
    assert missing.value.one_line().startswith("imagesmith-version: cannot download imagesmith 7.2.0")
