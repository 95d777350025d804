"""The pins contract: lock files, the constraints file, and pip's conflict report read back as one line;
the in-image guard run against a real pip with a real constraints file."""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

import pytest

from imagesmith.contract import pins
from imagesmith.errors import DataError

LOCK = pins.Lock(
    image="cuda-12.9-py3.11-bookworm-runtime",
    requirements=("nvidia-cuda-runtime-cu12==12.9.*",),
    parent="base-py3.11-bookworm",
    python="3.11",
    platform="x86_64-manylinux_2_36",
    index="https://pypi.org/simple",
    extra_index=None,
    resolver="uv 0.13.9",
    inputs="sha256:" + "0" * 64,
    pins=(
        pins.Pin(
            name="nvidia-cuda-runtime-cu12", version="12.9.79", hashes=("sha256:" + "a" * 64,), via=("-r in",)
        ),
        pins.Pin(
            name="Typing_Extensions", version="4.16.0", hashes=("sha256:" + "b" * 64, "sha256:" + "c" * 64)
        ),
    ),
)


def test_lock_round_trips_and_pip_reads_it_as_requirements(tmp_path: Path) -> None:
    text = LOCK.dumps()
    again = pins.parse_lock(text, "x.lock")
    assert again == pins.Lock(**{**LOCK.__dict__, "pins": tuple(sorted(LOCK.pins, key=lambda p: p.key))})
    assert again.digest == LOCK.digest
    # pip itself accepts the file (dry run, no index): every entry is a hash-pinned requirement.
    lock = tmp_path / "requirements.lock"
    lock.write_text(text)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--dry-run",
            "--no-index",
            "--no-deps",
            "--require-hashes",
            "-r",
            str(lock),
        ],
        capture_output=True,
        text=True,
    )
    # No index to fetch from, so pip stops at finding the files, after parsing every line with its hashes.
    assert "No matching distribution found for nvidia-cuda-runtime-cu12==12.9.79" in done.stderr, done.stderr


def test_digest_changes_with_any_pin_or_hash() -> None:
    moved = pins.Pin(name="Typing_Extensions", version="4.16.1", hashes=LOCK.pins[1].hashes)
    rehashed = pins.Pin(name="Typing_Extensions", version="4.16.0", hashes=("sha256:" + "d" * 64,))
    assert (
        len(
            {
                pins.pins_digest(LOCK.pins),
                pins.pins_digest((LOCK.pins[0], moved)),
                pins.pins_digest((LOCK.pins[0], rehashed)),
            }
        )
        == 3
    )


@pytest.mark.parametrize(
    ("text", "line", "what"),
    [
        ("torch==2.13.0\n", 1, "no header"),
        (LOCK.dumps().replace("# inputs: ", "# inptus: "), 1, "lacks inputs"),
        (LOCK.dumps() + "torch>=2.13\n", len(LOCK.dumps().splitlines()) + 1, "expected name==version"),
    ],
)
def test_a_broken_lock_is_one_line_naming_file_and_line(text: str, line: int, what: str) -> None:
    with pytest.raises(DataError) as info:
        pins.parse_lock(text, "base_images/x/requirements.lock")
    assert info.value.where == f"base_images/x/requirements.lock:{line}"
    assert what in info.value.one_line()


def test_constraints_leave_the_build_tools_unpinned() -> None:
    text = pins.constraints_text(
        [
            pins.Pin(name="torch", version="2.13.0"),
            pins.Pin(name="pip", version="23.0.1"),
            pins.Pin(name="Setuptools", version="84.2.1"),
        ],
        source="test",
    )
    assert [p.name for p in pins.parse_constraints(text, "c")] == ["torch"]


@pytest.fixture(scope="module")
def guarded_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv with this checkout installed (no dependencies, as in the images) and a constraints file
    pinning a real, older `six`: the image's situation in miniature."""
    root = tmp_path_factory.mktemp("guard")
    venv.create(root / "venv", with_pip=True)
    python = root / "venv" / "bin" / "python"
    repo = Path(__file__).resolve().parents[1]
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", str(repo)], check=True, capture_output=True
    )
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "six==1.16.0"], check=True, capture_output=True
    )
    subprocess.run(
        [str(python), "-m", "imagesmith.guard", "freeze", str(root / "constraints.txt")], check=True
    )
    return root


def _project(root: Path, requirement: str) -> Path:
    project = root / f"proj-{abs(hash(requirement))}"
    (project / "src" / "proj").mkdir(parents=True, exist_ok=True)
    (project / "src" / "proj" / "__init__.py").write_text("")
    (project / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"\n'
        f'[project]\nname = "proj"\nversion = "0.1.0"\ndependencies = ["{requirement}"]\n'
    )
    return project


def _guarded_install(root: Path, project: Path) -> subprocess.CompletedProcess[str]:
    python = root / "venv" / "bin" / "python"
    env = {"PATH": "/usr/bin:/bin", "PIP_CONSTRAINT": str(root / "constraints.txt"), "HOME": str(root)}
    for key in (
        "SSL_CERT_FILE",
        "PIP_CERT",
        "PIP_INDEX_URL",
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "NO_PROXY",
        "no_proxy",
    ):
        import os

        if key in os.environ:
            env[key] = os.environ[key]
    return subprocess.run(
        [str(python), "-m", "imagesmith.guard", "pip", "install", "--dry-run", str(project)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )


def test_freeze_writes_the_installed_set(guarded_venv: Path) -> None:
    pinned = {
        p.key: p.version for p in pins.parse_constraints((guarded_venv / "constraints.txt").read_text(), "c")
    }
    assert pinned["six"] == "1.16.0" and "imagesmith" in pinned and "pip" not in pinned


def test_a_requirement_against_the_pin_fails_with_one_line(guarded_venv: Path) -> None:
    done = _guarded_install(guarded_venv, _project(guarded_venv, "six>=1.17"))
    assert done.returncode != 0
    lines = [line for line in done.stderr.splitlines() if line.startswith("imagesmith:")]
    assert lines == [
        "imagesmith: proj 0.1.0 requires six>=1.17, but the curated image pins six==1.16.0"
        f" ({guarded_venv / 'constraints.txt'}): keep the image's six (relax the requirement), or choose another"
        " curated image; a deliberate override is `--build-arg IMAGE_PINS=off`"
    ], done.stdout + done.stderr


def test_a_requirement_within_the_pins_installs(guarded_venv: Path) -> None:
    done = _guarded_install(guarded_venv, _project(guarded_venv, "six"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "imagesmith:" not in done.stderr
    assert "six-1.17" not in done.stdout  # the pin held
