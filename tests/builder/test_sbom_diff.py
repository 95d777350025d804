"""The SBOM writer (CycloneDX's library over a real dpkg status file and a real Python environment) and the
diff of two builds, without an engine (the Docker tests build and diff real images)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

from imagesmith.builder import diff, sbom
from imagesmith.builder.sbom import Package

DPKG_STATUS = Path("/var/lib/dpkg/status")


@pytest.fixture(scope="module")
def two_envs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two real environments a week apart in miniature: six moved, idna arrived."""
    root = tmp_path_factory.mktemp("envs")
    sites = []
    for name, packages in (("old", ["six==1.16.0"]), ("new", ["six==1.17.0", "idna==3.10"])):
        venv.create(root / name, with_pip=True)
        python = root / name / "bin" / "python"
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", *packages], check=True, capture_output=True
        )
        site = subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        sites.append(Path(site))
    return sites[0], sites[1]


def _root_with_dpkg(tmp_path: Path) -> Path:
    if not DPKG_STATUS.is_file():
        pytest.fail("this machine has no dpkg status file; the suite runs on Debian")
    (tmp_path / "var/lib/dpkg").mkdir(parents=True)
    shutil.copy(DPKG_STATUS, tmp_path / "var/lib/dpkg/status")
    return tmp_path


def test_sbom_lists_debian_and_python_packages_and_validates(
    tmp_path: Path, two_envs: tuple[Path, Path]
) -> None:
    text = sbom.generate(name="img", version="1", root=_root_with_dpkg(tmp_path), site=two_envs[1])
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    packages = sbom.read_packages(text)
    python = {p.name.lower(): p for p in packages if p.kind == "python"}
    assert python["six"].version == "1.17.0" and python["six"].digest and python["idna"].version == "3.10"
    debs = {p.name.split(":")[0] for p in packages if p.kind == "deb"}
    expected = subprocess.run(
        ["dpkg-query", "-W", "-f", "${db:Status-Abbrev} ${Package}\n"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert debs == {line.split()[1] for line in expected.splitlines() if line.startswith("ii")}
    document = json.loads(text)
    assert document["metadata"]["component"]["type"] == "container"
    assert any(c["purl"].startswith("pkg:deb/debian/") for c in document["components"])


def test_diff_of_two_builds_names_what_moved(tmp_path: Path, two_envs: tuple[Path, Path]) -> None:
    root = _root_with_dpkg(tmp_path)
    manifests = []
    for label, site, cuda in (("old", two_envs[0], "12.8"), ("new", two_envs[1], "12.9")):
        out = tmp_path / label
        (out / "sbom").mkdir(parents=True)
        (out / "sbom" / "img.cdx.json").write_text(
            sbom.generate(name="img", version=label, root=root, site=site)
        )
        (out / "manifest.json").write_text(
            json.dumps(
                {
                    "schema": 1,
                    "images": [
                        {
                            "name": "img",
                            "image_id": f"sha256:{label * 8}",
                            "size": 1000 if label == "old" else 1500,
                            "labels": {"io.imagesmith.cuda": cuda, "io.imagesmith.lock": f"sha256:{label}"},
                            "sbom": {"path": "sbom/img.cdx.json"},
                        }
                    ],
                }
            )
        )
        manifests.append(out / "manifest.json")
    result = subprocess.run(
        [str(Path(sys.executable).with_name("imagesmith")), "images", "diff", "--json", *map(str, manifests)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1, result.stderr  # something changed
    image = json.loads(result.stdout)["images"][0]
    assert image["compatibility"] == {"CUDA": {"old": "12.8", "new": "12.9"}}
    assert image["labels"] == {"io.imagesmith.lock": {"old": "sha256:old", "new": "sha256:new"}}
    assert {"kind": "python", "name": "six", "old": "1.16.0", "new": "1.17.0"} in image["packages"]["changed"]
    assert {"kind": "python", "name": "idna", "version": "3.10"} in image["packages"]["added"]
    assert image["size"]["delta"] == 500 and not image["packages"]["removed"]
    same = subprocess.run(
        [
            str(Path(sys.executable).with_name("imagesmith")),
            "images",
            "diff",
            str(manifests[1]),
            f"{manifests[1]}#img",
        ],
        capture_output=True,
        text=True,
    )
    assert same.returncode == 0 and "img: no changes" in same.stdout, same.stdout + same.stderr


def test_same_version_with_other_files_is_a_rebuild() -> None:
    def snap(digest: str) -> diff.Snapshot:
        return diff.Snapshot(
            name="img", ref="x", image_id=None, labels={}, size=None,
            packages=(Package(kind="python", name="torch", version="2.13.0", digest=digest),),
        )  # fmt: skip

    result = diff.diff_one(snap("sha256:a"), snap("sha256:b"))
    assert [p.name for p in result.rebuilt] == ["torch"] and not result.same
    assert diff.diff_one(snap("sha256:a"), snap("sha256:a")).same


def test_unknown_inputs_are_one_line_errors(tmp_path: Path) -> None:
    exe = str(Path(sys.executable).with_name("imagesmith"))
    missing = subprocess.run(
        [exe, "images", "diff", str(tmp_path / "a.json"), str(tmp_path / "b.json")],
        capture_output=True,
        text=True,
    )
    assert (
        missing.returncode == 2 and missing.stderr.count("\n") == 1 and "no such manifest" in missing.stderr
    )
    (tmp_path / "m.json").write_text('{"images": [{"name": "img"}]}')
    wrong = subprocess.run(
        [exe, "images", "diff", f"{tmp_path}/m.json#nope", f"{tmp_path}/m.json"],
        capture_output=True,
        text=True,
    )
    assert wrong.returncode == 2 and "no image 'nope' in the manifest (it has: img)" in wrong.stderr


def test_this_interpreter_is_readable_too() -> None:
    # The builder's own environment: every distribution read, none without a version.
    packages = sbom.python_packages(Path(sysconfig.get_paths()["purelib"]))
    assert packages and all(p.version for p in packages)
