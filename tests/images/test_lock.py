"""`imagesmith images lock`: real resolutions by uv against PyPI, children within their parents' pins,
stale locks refused by render, and what moved printed."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

from imagesmith.contract import pins
from imagesmith.images import lock

RunCli = Callable[..., subprocess.CompletedProcess[str]]

CA = "/etc/ssl/certs/ca-certificates.crt"
POLICY = """schema: 1
registry: localhost:5000/team
maintainer: Team <ml-platform@example.com>
vendor: team
bases:
  bookworm: {{image: debian:bookworm-slim, python: "3.11", description: Debian 12 (bookworm)}}
pythons: ["3.11"]
variants: [runtime]
frameworks:
  cuda: ["{cuda}"]
fleet:
  - {{name: l4, driver: "575.57.08", gpu: L4}}
"""
BASE = "base-py3.11-bookworm"


def _team(tmp_path: Path, cuda: str = "12.9") -> Path:
    (tmp_path / "imagesmith.yaml").write_text(POLICY.format(cuda=cuda))
    return tmp_path


def _lock(run_cli: RunCli, root: Path, *args: str) -> tuple[int, str, str]:
    done = run_cli("images", "lock", "--ca-cert", CA, *args, cwd=root)
    return done.returncode, done.stdout, done.stderr


def _read(root: Path, image: str) -> pins.Lock:
    path = root / "base_images" / image / "requirements.lock"
    return pins.parse_lock(path.read_text(), str(path))


def test_lock_resolves_each_image_on_top_of_its_parent(run_cli: RunCli, tmp_path: Path) -> None:
    root = _team(tmp_path)
    code, out, err = _lock(run_cli, root)
    assert code == 0, out + err
    base, child = _read(root, BASE), _read(root, "cuda-12.9-py3.11-bookworm-runtime")
    assert {p.key: p.version for p in base.pins} == {"nvidia-ml-py": "13.615.71"}
    assert [p.key for p in child.pins] == ["nvidia-cuda-runtime-cu12"]  # only what the child adds
    assert child.pins[0].version.startswith("12.9.")
    assert (
        all(h.startswith("sha256:") for p in (*base.pins, *child.pins) for h in p.hashes)
        and child.pins[0].hashes
    )
    assert (child.python, child.platform, child.parent) == ("3.11", "x86_64-manylinux_2_36", BASE)
    # Locked: a second run resolves nothing; render accepts the locks and labels the images with them.
    code, out, _ = _lock(run_cli, root)
    assert code == 0 and "0 locked, 2 up to date" in out
    rendered = run_cli("images", "render", cwd=root)
    assert rendered.returncode == 0, rendered.stderr
    dockerfile = (root / "base_images" / "cuda-12.9-py3.11-bookworm-runtime" / "Dockerfile").read_text()
    assert "COPY requirements.lock /opt/imagesmith/locks/cuda-12.9-py3.11-bookworm-runtime.lock" in dockerfile
    assert "--require-hashes --no-deps -r /opt/imagesmith/locks/" in dockerfile
    assert f'io.imagesmith.lock="{child.digest}"' in dockerfile


def test_a_policy_change_makes_the_lock_stale_and_relocking_says_what_moved(
    run_cli: RunCli, tmp_path: Path
) -> None:
    root = _team(tmp_path)
    assert _lock(run_cli, root)[0] == 0
    assert run_cli("images", "render", cwd=root).returncode == 0
    (root / "imagesmith.yaml").write_text(POLICY.format(cuda="12.8"))
    # The plan now names another image: its lock is missing, and render says so without writing anything.
    refused = run_cli("images", "render", "--check", cwd=root)
    assert refused.returncode == 1
    assert "have no lock: cuda-12.8-py3.11-bookworm-runtime; nothing checked" in refused.stderr
    # The base's lock moves (say, relocked by hand with --upgrade): its child's lock no longer stands on it.
    base_file = root / "base_images" / BASE / "requirements.lock"
    base_file.write_text(
        base_file.read_text().replace("\nnvidia-ml-py==13.615.71 ", "\nnvidia-ml-py==13.590.48 ", 1)
    )
    (root / "imagesmith.yaml").write_text(POLICY.format(cuda="12.9"))
    stale = run_cli("images", "render", cwd=root)
    assert stale.returncode == 1
    child = "cuda-12.9-py3.11-bookworm-runtime"
    assert (
        f"base_images/{child}/requirements.lock: the lock of {child} no longer matches the policy:"
        in stale.stderr
    )
    assert "its parent's lock changed; nothing rendered" in stale.stderr
    (root / "imagesmith.yaml").write_text(POLICY.format(cuda="12.8"))
    code, out, err = _lock(run_cli, root)
    assert code == 0, out + err
    assert "locked cuda-12.8-py3.11-bookworm-runtime: 1 packages (new)" in out
    assert "1 locked, 1 up to date" in out
    # --upgrade re-resolves everything and names what moved: the hand-moved pin goes back.
    code, out, err = _lock(run_cli, root, "--upgrade")
    assert code == 0, out + err
    assert "nvidia-ml-py 13.590.48 -> 13.615.71" in out
    assert run_cli("images", "render", "--check", cwd=root).returncode == 1  # files differ, but no lock error
    assert run_cli("images", "render", cwd=root).returncode == 0


def test_moved_names_every_change() -> None:
    def made(*entries: tuple[str, str, str]) -> pins.Lock:
        return pins.Lock(
            image="x", requirements=(), parent=None, python="3.11", platform="p", index="i", extra_index=None,
            resolver="r", inputs="h", pins=tuple(pins.Pin(name=n, version=v, hashes=(h,)) for n, v, h in entries),
        )  # fmt: skip

    old = made(("numpy", "2.3.1", "a"), ("six", "1.16.0", "b"), ("gone", "1.0", "c"))
    new = made(("numpy", "2.3.4", "d"), ("six", "1.16.0", "e"), ("fresh", "0.1", "f"))
    assert lock.moved(old, new) == [
        "+ fresh 0.1",
        "- gone 1.0",
        "numpy 2.3.1 -> 2.3.4",
        "six 1.16.0 (hashes changed)",
    ]


def test_a_child_never_changes_what_its_parent_installed() -> None:
    parent = (pins.Pin(name="nvidia-cuda-nvcc-cu12", version="12.9.86"),)
    kept, notes = lock.parent_wins(("nvidia-cuda-nvcc-cu12==12.5.*", "nvidia-cuda-cccl-cu12==12.5.*"), parent)
    assert kept == ("nvidia-cuda-cccl-cu12==12.5.*",)
    assert notes == [
        "kept the parent's nvidia-cuda-nvcc-cu12==12.9.86 (the policy asks for nvidia-cuda-nvcc-cu12==12.5.*)"
    ]
    assert lock.parent_wins(("nvidia-cuda-nvcc-cu12==12.9.*",), parent) == (
        ("nvidia-cuda-nvcc-cu12==12.9.*",),
        [],
    )


def test_bad_input_is_one_line_with_its_own_exit_code(run_cli: RunCli, tmp_path: Path) -> None:
    root = _team(tmp_path)
    unknown = run_cli("images", "lock", "cuda-12.9-py3.11-bookwrm-runtime", cwd=root)
    assert unknown.returncode == 2
    assert (
        unknown.stderr.count("\n") == 1
        and "closest known: cuda-12.9-py3.11-bookworm-runtime" in unknown.stderr
    )
    unreachable = run_cli("images", "lock", "--index-url", "http://127.0.0.1:9/simple", BASE, cwd=root)
    assert unreachable.returncode == 3, unreachable.stdout + unreachable.stderr
    assert "the index did not answer" in unreachable.stderr and "Traceback" not in unreachable.stderr
    lock_file = root / "base_images" / BASE / "requirements.lock"
    lock_file.parent.mkdir(parents=True)
    lock_file.write_text("torch==2.13.0\n")
    broken = run_cli("images", "render", cwd=root)
    assert broken.returncode == 2
    assert f"base_images/{BASE}/requirements.lock:1: not an imagesmith lock" in broken.stderr
