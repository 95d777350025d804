"""ELF reader robustness (hypothesis), ld.so.cache formats against ldconfig, and the CLI contract."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imagesmith.doctor.facts import ORIGINS
from imagesmith.doctor.loader import elf, ldcache
from tests.doctor.conftest import build_lib

SAMPLE = Path("/bin/true").read_bytes()[:200_000]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cuts=st.integers(min_value=0, max_value=len(SAMPLE)),
    flips=st.lists(st.tuples(st.integers(0, 4095), st.integers(0, 255)), max_size=40),
)
def test_corrupted_elf_raises_elferror_or_parses(cuts: int, flips: list[tuple[int, int]]) -> None:
    data = bytearray(SAMPLE[:cuts] if cuts < 64 else SAMPLE)
    for pos, value in flips:
        if pos < len(data):
            data[pos] = value
    for fn in (elf.parse, elf.sections, elf.version_needs, elf.version_defs):
        with contextlib.suppress(elf.ElfError):
            fn(bytes(data))


def test_truncated_and_non_elf_files_named_so(tmp_path: Path) -> None:
    (tmp_path / "libempty.so.1").write_bytes(b"")
    (tmp_path / "libtext.so.1").write_text("INPUT(-lfoo)\n")
    good = build_lib(tmp_path / "libgood.so.1", "good")
    (tmp_path / "libcut.so.1").write_bytes(good.read_bytes()[:100])
    for name in ("libempty.so.1", "libtext.so.1", "libcut.so.1"):
        with pytest.raises(elf.ElfError):
            elf.read_elf(str(tmp_path / name))
    assert elf.read_elf(str(good)).soname == "libgood.so.1"


@pytest.mark.parametrize("fmt", ["new", "compat", "old"])
def test_ld_so_cache_formats_match_ldconfig(tmp_path: Path, fmt: str) -> None:
    libs = tmp_path / "libs"
    build_lib(libs / "libalpha.so.1", "alpha")
    build_lib(libs / "libbeta.so.2", "beta")
    build_lib(libs / "glibc-hwcaps/x86-64-v2/libalpha.so.1", "alpha")
    conf = tmp_path / "ld.so.conf"
    conf.write_text(f"{libs}\n")
    cache = tmp_path / "ld.so.cache"
    subprocess.run(["ldconfig", "-c", fmt, "-C", str(cache), "-f", str(conf), "-r", "/"], check=True)
    listing = subprocess.run(
        ["ldconfig", "-p", "-C", str(cache)], capture_output=True, text=True, check=True
    ).stdout
    truth = [(line.split()[0], line.split(" => ")[1]) for line in listing.splitlines()[1:] if " => " in line]
    parsed = ldcache.parse(cache.read_bytes())
    assert parsed.format == fmt
    assert [(e.key, e.value) for e in parsed.entries] == [(k.strip(), v.strip()) for k, v in truth]
    if fmt != "old":
        hits = parsed.lookup("libalpha.so.1", default_flags=0x303, active_hwcaps=("x86-64-v3", "x86-64-v2"))
        assert hits[0].endswith("glibc-hwcaps/x86-64-v2/libalpha.so.1")
    # The resolver's index (lazy for the new layout) answers every name as the full decode does.
    data = cache.read_bytes()
    full, index = ldcache.CacheIndex(data, ldcache.scan(data)[2]), ldcache.load_index(str(cache))
    assert index is not None and index.keys() == full.keys()
    for key in (*full.keys(), "libmissing.so.1", "alpha.so.1"):
        assert index.rows(key) == full.rows(key), key
        for hwcaps in ((), ("x86-64-v3", "x86-64-v2")):
            assert index.lookup(key, default_flags=0x303, active_hwcaps=hwcaps) == full.lookup(
                key, default_flags=0x303, active_hwcaps=hwcaps
            )


def test_lazy_cache_index_is_the_full_decode_on_this_system() -> None:
    data = Path("/etc/ld.so.cache").read_bytes() if Path("/etc/ld.so.cache").exists() else b""
    if not data.startswith(ldcache.NEW_MAGIC):
        pytest.skip("no new-format /etc/ld.so.cache here")
    full, index = ldcache.CacheIndex(data, ldcache.scan(data)[2]), ldcache.load_index("/etc/ld.so.cache")
    assert isinstance(index, ldcache.LazyIndex)
    names = full.keys()
    for key in names:
        assert index.rows(key) == full.rows(key), key


def test_a_malformed_new_cache_is_refused_by_the_lazy_index_too(tmp_path: Path) -> None:
    data = Path("/etc/ld.so.cache").read_bytes() if Path("/etc/ld.so.cache").exists() else b""
    if not data.startswith(ldcache.NEW_MAGIC):
        pytest.skip("no new-format /etc/ld.so.cache here")
    bad = tmp_path / "ld.so.cache"
    bad.write_bytes(data[: len(data) // 2])  # value strings cut off
    assert ldcache.load_index(str(bad)) is None
    assert ldcache.load(str(bad)) is None


def test_symlink_loop_and_unreadable_dirs_do_not_hang(tmp_path: Path) -> None:
    loop = tmp_path / "loop"
    loop.mkdir()
    (loop / "libx.so.1").symlink_to(loop / "libx.so.1")
    (tmp_path / "d1").symlink_to(tmp_path / "d2")
    (tmp_path / "d2").symlink_to(tmp_path / "d1")
    exe = Path(sys.executable).resolve()
    llp = ":".join([str(loop), str(tmp_path / "d1"), "/proc/1/root/nonexistent"] * 300)
    proc = _cli("why", str(exe), "--json", env={"LD_LIBRARY_PATH": llp})
    assert proc.returncode in (0, 1), proc.stderr


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "imagesmith", "doctor", *args], capture_output=True, text=True,
                          env=full, timeout=120)  # fmt: skip


def test_usage_errors_are_one_line_exit_2(tmp_path: Path) -> None:
    for args in (("--bogus",), ("why",), ("why", str(tmp_path / "missing")), ("--root", str(tmp_path / "nope")),
                 ("why", str(tmp_path)), ("--probe-timeout", "0")):  # fmt: skip
        proc = _cli(*args)
        assert proc.returncode == 2, (args, proc.stderr)
        assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    text = tmp_path / "libtext.so"
    text.write_text("hello")
    proc = _cli("why", str(text))
    assert proc.returncode == 2 and "not a loadable ELF file" in proc.stderr


def test_help_lists_both_forms() -> None:
    proc = _cli("--help")
    assert proc.returncode == 0 and "doctor why FILE" in proc.stdout
    assert _cli("why", "--help").returncode == 0


def test_doctor_is_listed_by_the_click_cli_and_imports_no_click() -> None:
    listing = subprocess.run([sys.executable, "-m", "imagesmith", "--help"], capture_output=True, text=True)
    assert "doctor" in listing.stdout
    code = (
        "import sys; from imagesmith.__main__ import main; rc = main(['doctor', '--json', '--no-probe']);"
        "bad = [m for m in ('click', 'jinja2', 'yaml', 'rich', 'packaging', 'docker') if m in sys.modules];"
        "print('BAD', bad, file=sys.stderr); sys.exit(0 if not bad else 9)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-500:]


def test_image_with_unreachable_engine_exits_3(tmp_path: Path) -> None:
    proc = _cli("--image", "example:latest", env={"DOCKER_HOST": f"unix://{tmp_path}/no.sock"})
    assert proc.returncode == 3 and "Docker engine unreachable" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_this_machine_json_contract() -> None:
    """Whatever this machine is, the doctor prints the JSON other commands parse and exits 0 or 1."""
    proc = _cli("--json")
    assert proc.returncode in (0, 1), proc.stderr
    import json

    data = json.loads(proc.stdout)
    assert data["schema"] == 1 and data["status"] in ("ok", "warning", "error")
    for lib in data["libraries"]:
        assert {"name", "path", "version", "origin"} <= set(lib)
        assert lib["origin"] in ORIGINS
