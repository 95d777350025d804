"""``imagesmith doctor why`` against the real loader (ldd / LD_DEBUG) on gcc-built trees."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.doctor.conftest import build_exe, build_lib, gcc, install_wheel

HWCAPS = "x86-64-v2"


def ldd(path: Path, env: dict[str, str], cwd: Path) -> dict[str, str | None]:
    """name -> resolved absolute path (None = not found), from the real loader."""
    proc = subprocess.run(["ldd", str(path)], capture_output=True, text=True, env=env, cwd=cwd, check=False)
    out: dict[str, str | None] = {}
    for line in proc.stdout.splitlines():
        line = line.strip()
        m = re.match(r"(\S+) => (\S+)", line)
        if m:
            out[m.group(1)] = None if m.group(2) == "not" else m.group(2)
            continue
        m = re.match(r"(\S+) \(0x", line)
        if m and not m.group(1).startswith("linux-vdso"):
            name = m.group(1)
            out[os.path.basename(name) if name.startswith("/") else name] = (
                str(cwd / name) if not name.startswith("/") else name
            )
    return out


def why(path: Path, env: dict[str, str], cwd: Path) -> dict[str, object]:
    proc = subprocess.run(
        [sys.executable, "-m", "imagesmith", "doctor", "why", str(path), "--json"],
        capture_output=True, text=True, env=env, cwd=cwd, check=False,
    )  # fmt: skip
    assert proc.returncode in (0, 1), proc.stderr
    data = json.loads(proc.stdout)
    assert isinstance(data, dict)
    return data


def first_resolution(report: dict[str, object]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    libs = report["libraries"]
    assert isinstance(libs, list)
    for e in libs:
        if e["kind"] == "needed" and e["name"] not in out:
            out[e["name"]] = e["path"]
    return out


def agree(exe: Path, tmp: Path, env_extra: dict[str, str] | None = None) -> dict[str, object]:
    """Assert that why and ldd map every DT_NEEDED name to the same file; return why's report."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LD_")}
    env.update(env_extra or {})
    truth = ldd(exe, env, tmp)
    report = why(exe, env, tmp)
    mine = first_resolution(report)
    assert truth, "ldd printed nothing"
    for name, path in truth.items():
        got = mine.get(name)
        if name.startswith("ld-linux"):
            got = got or next((e["path"] for e in report["libraries"] if e["name"] == name), None)  # type: ignore[union-attr]
            assert got is not None and os.path.realpath(got) == os.path.realpath(str(path)), (name, got, path)
            continue
        assert name in mine, f"{name}: ldd resolved it, why did not list it"
        norm = None if got is None else os.path.normpath(got)
        want = None if path is None else os.path.normpath(path)
        assert norm == want, f"{name}: why={got} ldd={path}"
    assert set(mine) <= set(truth) | {"ld-linux-x86-64.so.2"}, set(mine) - set(truth)
    return report


def via(report: dict[str, object], name: str) -> str:
    libs = report["libraries"]
    assert isinstance(libs, list)
    return str(next(e["via"] for e in libs if e["name"] == name and e["kind"] == "needed"))


def test_rpath_is_inherited_runpath_is_not(tmp_path: Path) -> None:
    # exe(RPATH=r) -> liba (no paths) -> libb: libb is found through the exe's inherited RPATH.
    # exe2(RUNPATH=r) -> liba -> libb: RUNPATH is not inherited, so libb is not found.
    r = tmp_path / "r"
    build_lib(r / "libb.so.1", "b")
    build_lib(r / "liba.so.1", "a", needs=(("libb.so.1", r),))
    exe = build_exe(tmp_path / "exe", needs=(("liba.so.1", r),), rpath=str(r))
    report = agree(exe, tmp_path)
    assert via(report, "libb.so.1") == "rpath"
    exe2 = build_exe(tmp_path / "exe2", needs=(("liba.so.1", r),), runpath=str(r))
    report2 = agree(exe2, tmp_path)
    assert via(report2, "libb.so.1") == "not_found"


def test_rpath_beats_ld_library_path_and_runpath_loses_to_it(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    for d in (one, two):
        build_lib(d / "libx.so.1", "x")
    exe = build_exe(tmp_path / "rp", needs=(("libx.so.1", one),), rpath=str(one))
    report = agree(exe, tmp_path, {"LD_LIBRARY_PATH": str(two)})
    assert via(report, "libx.so.1") == "rpath"
    shadowed = next(e for e in report["libraries"] if e["name"] == "libx.so.1")["shadowed"]  # type: ignore[index]
    assert str(two / "libx.so.1") in shadowed
    exe2 = build_exe(tmp_path / "rn", needs=(("libx.so.1", one),), runpath=str(one))
    assert via(agree(exe2, tmp_path, {"LD_LIBRARY_PATH": str(two)}), "libx.so.1") == "ld_library_path"


def test_rpath_ignored_when_runpath_present_on_same_object(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    build_lib(one / "libx.so.1", "x")
    build_lib(two / "libx.so.1", "x")
    exe = build_exe(
        tmp_path / "both", needs=(("libx.so.1", one),), rpath=str(one),
    )  # fmt: skip
    # Add a RUNPATH as well: the linker writes both tags with --enable-new-dtags after --disable-new-dtags.
    subprocess.run(["gcc", "-o", str(exe), "-x", "c", "-", f"-L{one}", "-l:libx.so.1",
                    f"-Wl,--disable-new-dtags,-rpath,{one}", f"-Wl,--enable-new-dtags,-rpath,{two}"],
                   input="int x_fn(void); int main(void){return x_fn()>9;}", text=True, check=True)  # fmt: skip
    agree(exe, tmp_path)


def test_origin_is_the_symlink_directory_not_the_realpath(tmp_path: Path) -> None:
    real, link, deps_real, deps_link = (
        tmp_path / "real",
        tmp_path / "link",
        tmp_path / "real/deps",
        tmp_path / "link/deps",
    )
    build_lib(deps_real / "libdep.so.1", "dep", soname="libdep.so.1")
    build_lib(deps_link / "libdep.so.1", "dep", soname="libdep.so.1")
    build_lib(real / "libmid.so.1", "mid", needs=(("libdep.so.1", deps_real),), rpath="$ORIGIN/deps")
    link.mkdir(exist_ok=True)
    (link / "libmid.so.1").symlink_to(real / "libmid.so.1")
    exe = build_exe(tmp_path / "exe", needs=(("libmid.so.1", real),), rpath=str(link))
    report = agree(exe, tmp_path)
    dep = next(e for e in report["libraries"] if e["name"] == "libdep.so.1")  # type: ignore[index]
    assert dep["path"] == str(deps_link / "libdep.so.1")


def test_breadth_first_first_soname_wins(tmp_path: Path) -> None:
    # exe needs [liba, libx]; liba's RUNPATH has another libx. BFS loads the exe-level libx first.
    top, other = tmp_path / "top", tmp_path / "other"
    build_lib(top / "libx.so.1", "x")
    build_lib(other / "libx.so.1", "x")
    build_lib(top / "liba.so.1", "a", needs=(("libx.so.1", other),), runpath=str(other))
    exe = build_exe(tmp_path / "exe", needs=(("liba.so.1", top), ("libx.so.1", top)), rpath=str(top))
    report = agree(exe, tmp_path)
    edges = [e for e in report["libraries"] if e["name"] == "libx.so.1"]  # type: ignore[index]
    assert {e["via"] for e in edges} == {"rpath", "already_loaded"}


def test_glibc_hwcaps_subdirectory_wins(tmp_path: Path) -> None:
    d = tmp_path / "d"
    build_lib(d / "libx.so.1", "x")
    build_lib(d / "glibc-hwcaps" / HWCAPS / "libx.so.1", "x")
    exe = build_exe(tmp_path / "exe", needs=(("libx.so.1", d),))
    report = agree(exe, tmp_path, {"LD_LIBRARY_PATH": str(d)})
    libx = next(e for e in report["libraries"] if e["name"] == "libx.so.1")  # type: ignore[index]
    assert f"glibc-hwcaps/{HWCAPS}" in libx["path"]
    assert str(d / "libx.so.1") in libx["shadowed"]


@pytest.mark.parametrize("llp", ["{bad}:", ":{bad}", "{bad};;{good}", "{bad}::{good}"])
def test_ld_library_path_separators_and_empty_elements(tmp_path: Path, llp: str) -> None:
    cwd, good, build = tmp_path / "cwd", tmp_path / "good", tmp_path / "build"
    build_lib(build / "libx.so.1", "x")
    build_lib(cwd / "libx.so.1", "x")
    build_lib(good / "libx.so.1", "x")
    exe = build_exe(tmp_path / "exe", needs=(("libx.so.1", build),))
    value = llp.format(bad=tmp_path / "missing", good=good)
    report = agree(exe, cwd, {"LD_LIBRARY_PATH": value})
    assert via(report, "libx.so.1") == "ld_library_path"


def test_system_cache_and_not_found(tmp_path: Path) -> None:
    build = tmp_path / "build"
    build_lib(build / "libnowhere.so.7", "nowhere")
    exe = build_exe(tmp_path / "exe", needs=(("libnowhere.so.7", build),))
    report = agree(exe, tmp_path)
    assert via(report, "libnowhere.so.7") == "not_found"
    assert via(report, "libc.so.6") == "ld_so_cache"


def test_wrong_machine_candidate_is_skipped(tmp_path: Path) -> None:
    bad, good = tmp_path / "bad", tmp_path / "good"
    build_lib(good / "libx.so.1", "x")
    foreign = build_lib(bad / "libx.so.1", "x")
    data = bytearray(foreign.read_bytes())
    data[18:20] = (183).to_bytes(2, "little")  # e_machine = aarch64
    foreign.write_bytes(bytes(data))
    exe = build_exe(tmp_path / "exe", needs=(("libx.so.1", good),))
    report = agree(exe, tmp_path, {"LD_LIBRARY_PATH": f"{bad}:{good}"})
    libx = next(e for e in report["libraries"] if e["name"] == "libx.so.1")  # type: ignore[index]
    assert libx["path"] == str(good / "libx.so.1")
    assert any("aarch64" in s for s in libx["skipped"])


def test_non_elf_candidate_is_fatal_like_glibc(tmp_path: Path) -> None:
    bad, good = tmp_path / "bad", tmp_path / "good"
    build_lib(good / "libx.so.1", "x")
    bad.mkdir()
    (bad / "libx.so.1").write_text("not an ELF file\n")
    exe = build_exe(tmp_path / "exe", needs=(("libx.so.1", good),))
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("LD_")},
        "LD_LIBRARY_PATH": f"{bad}:{good}",
    }
    real = subprocess.run(["ldd", str(exe)], capture_output=True, text=True, env=env, check=False)
    assert "invalid ELF header" in real.stderr + real.stdout or "file too short" in real.stderr + real.stdout
    report = why(exe, env, tmp_path)
    libx = next(e for e in report["libraries"] if e["name"] == "libx.so.1")  # type: ignore[index]
    assert libx["path"] == str(bad / "libx.so.1") and "error" in libx


def test_dlopen_of_libcuda_from_real_libcudart_matches_ld_debug(
    tmp_path: Path, cudart_wheels: dict[int, Path]
) -> None:
    """The real libcudart dlopens libcuda.so.1 from its own link map; LD_DEBUG shows where it looked."""
    site = install_wheel(cudart_wheels[12], tmp_path / "site")
    cudart = site / "nvidia/cuda_runtime/lib/libcudart.so.12"
    drv = tmp_path / "driver"
    gcc(drv / "libcuda.so.1", "int cuDriverGetVersion(int*v){*v=12020;return 0;}\nint cuInit(unsigned f){return 0;}\n"
        "int cuGetProcAddress(){return 500;}\nint cuGetProcAddress_v2(){return 500;}\n", soname="libcuda.so.1")  # fmt: skip
    prog = gcc(
        tmp_path / "app",
        "int cudaDriverGetVersion(int*);\nint main(void){int v=0; cudaDriverGetVersion(&v); return 0;}\n",
        f"-L{cudart.parent}", "-l:libcudart.so.12", f"-Wl,--disable-new-dtags,-rpath,{cudart.parent}",
        shared=False,
    )  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("LD_")}
    env.update({"LD_LIBRARY_PATH": str(drv), "LD_DEBUG": "libs,files"})
    trace = subprocess.run(
        [str(prog)], capture_output=True, text=True, env=env, timeout=30, check=False
    ).stderr
    m = re.search(r"file=libcuda\.so\.1 \[0\];\s+dynamically loaded by (\S+)", trace)
    assert m, trace[-2000:]
    assert m.group(1) == str(cudart)
    init = re.search(r"calling init: (\S*libcuda\.so\.1)", trace)
    assert init and init.group(1) == str(drv / "libcuda.so.1")
    del env["LD_DEBUG"]
    report = why(prog, env, tmp_path)
    edge = next(e for e in report["libraries"] if e["name"] == "libcuda.so.1")  # type: ignore[index]
    assert edge["kind"] == "dlopen" and edge["needed_by"] == str(cudart)
    assert edge["path"] == str(drv / "libcuda.so.1") and edge["via"] == "ld_library_path"


@pytest.mark.parametrize("token", ["$LIB", "${LIB}", "$PLATFORM", "${PLATFORM}"])
def test_lib_and_platform_tokens_match_ldd(tmp_path: Path, token: str) -> None:
    """$LIB and $PLATFORM are the values ld.so --list-diagnostics reports."""
    from imagesmith.doctor.loader import loaderconf

    full = loaderconf.detect()
    value = full.dst_lib if "LIB" in token else full.platform
    libs = tmp_path / "app" / value
    build_lib(libs / "libtok.so.1", "tok")
    exe = build_exe(tmp_path / "app" / "main", needs=(("libtok.so.1", libs),), runpath=f"$ORIGIN/{token}")
    report = agree(exe, tmp_path)
    assert first_resolution(report)["libtok.so.1"] == str(libs / "libtok.so.1")


@pytest.mark.parametrize("subdir", ["x86_64", "tls", "haswell/x86_64"])
def test_legacy_hwcap_subdirectory_as_the_loader_searches_it(tmp_path: Path, subdir: str) -> None:
    """Before glibc 2.37 the loader also looks under legacy subdirectories (tls, the platform, hwcap names), which
    ``doctor why`` now reads from ``ld.so --list-diagnostics`` alone (dl_platform, dl_hwcap, dl_hwcap_important)."""
    from imagesmith.doctor.loader import loaderconf

    config = loaderconf.detect()
    d = tmp_path / "d"
    build_lib(d / "libx.so.1", "x")
    build_lib(d / subdir / "libx.so.1", "x")
    exe = build_exe(tmp_path / "exe", needs=(("libx.so.1", d),))
    report = agree(exe, tmp_path, {"LD_LIBRARY_PATH": str(d)})
    libx = next(e for e in report["libraries"] if e["name"] == "libx.so.1")  # type: ignore[index]
    if subdir in config.legacy_subdirs:  # a glibc 2.36 loader on a CPU that has them
        assert libx["path"] == str(d / subdir / "libx.so.1") and str(d / "libx.so.1") in libx["shadowed"]
    else:
        assert libx["path"] == str(d / "libx.so.1")
