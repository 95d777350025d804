"""The hand-written ELF reader (imagesmith.doctor.loader.elf) held against pyelftools, the differential
oracle: on every shared library and executable of this machine's system directories, on gcc-built
libraries with hypothesis-chosen sonames, NEEDED entries, RPATH/RUNPATH and symbol versions, and on
corrupted copies (where pyelftools reads a file cleanly, ours must agree with it or refuse it).

pyelftools costs ~60 ms to import, so the doctor does not use it at run time; this is where it earns its
place (docs/doctor.md)."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Literal

import pytest
from elftools.common.exceptions import ELFError as PyElfError
from elftools.elf.dynamic import DynamicSegment
from elftools.elf.elffile import ELFFile
from elftools.elf.gnuversions import GNUVerDefSection, GNUVerNeedSection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imagesmith.doctor.loader import elf
from tests.doctor.conftest import gcc


def oracle(data: bytes) -> dict[str, object]:
    """The loader-relevant facts of an ELF file as pyelftools reads them."""
    f = ELFFile(io.BytesIO(data))
    out: dict[str, object] = {
        "class": f.elfclass,
        "big_endian": not f.little_endian,
        "type": f.header["e_type"],
        "soname": None,
        "needed": [],
        "rpath": None,
        "runpath": None,
        "nodeflib": False,
        "interp": None,
        "version_needs": {},
        "version_defs": (),
    }
    needed: list[str] = []
    for segment in f.iter_segments():
        if segment["p_type"] == "PT_INTERP":
            out["interp"] = segment.get_interp_name()
        if isinstance(segment, DynamicSegment):
            for tag in segment.iter_tags():
                kind = tag.entry.d_tag
                if kind == "DT_NEEDED":
                    needed.append(tag.needed)
                elif kind == "DT_SONAME":
                    out["soname"] = tag.soname
                elif kind == "DT_RPATH":
                    out["rpath"] = tag.rpath
                elif kind == "DT_RUNPATH":
                    out["runpath"] = tag.runpath
                elif kind == "DT_FLAGS_1":
                    out["nodeflib"] = bool(tag.entry.d_val & elf.DF_1_NODEFLIB)
    out["needed"] = tuple(needed)
    for section in f.iter_sections():
        if isinstance(section, GNUVerNeedSection):
            out["version_needs"] = {
                verneed.name: tuple(aux.name for aux in auxes) for verneed, auxes in section.iter_versions()
            }
        elif isinstance(section, GNUVerDefSection):
            names = []
            for verdef, auxes in section.iter_versions():
                if verdef["vd_flags"] & 0x1:  # VER_FLG_BASE names the file itself, not a version
                    continue
                names += [aux.name for aux in auxes][:1]
            out["version_defs"] = tuple(names)
    return out


def ours(data: bytes) -> dict[str, object]:
    info = elf.parse(data)
    return {
        "class": 64 if info.elf_class == 2 else 32,
        "big_endian": info.big_endian,
        "type": {1: "ET_REL", 2: "ET_EXEC", 3: "ET_DYN", 4: "ET_CORE"}.get(info.type, info.type),
        "soname": info.soname,
        "needed": info.needed,
        "rpath": info.rpath,
        "runpath": info.runpath,
        "nodeflib": info.nodeflib,
        "interp": info.interp,
        "version_needs": {k: tuple(v) for k, v in elf.version_needs(data).items()},
        "version_defs": tuple(elf.version_defs(data)),
    }


def _system_objects() -> list[Path]:
    found: list[Path] = []
    for directory, pattern in (("/usr/lib/x86_64-linux-gnu", "*.so*"), ("/usr/bin", "*")):
        for path in sorted(Path(directory).glob(pattern)):
            if path.is_file() and not path.is_symlink() and path.read_bytes()[:4] == b"\x7fELF":
                found.append(path)
    return found[:: max(1, len(found) // 120)]  # an even sample of ~120: libc, libstdc++, python, ...


SYSTEM = _system_objects()


def test_the_sample_is_real() -> None:
    assert len(SYSTEM) >= 60, SYSTEM
    assert any(p.name.startswith("libc.so") for p in Path("/usr/lib/x86_64-linux-gnu").glob("libc.so*"))


@pytest.mark.parametrize("path", SYSTEM, ids=lambda p: p.name)
def test_system_objects_read_alike(path: Path) -> None:
    data = path.read_bytes()
    assert ours(data) == oracle(data)


def test_libc_defines_the_glibc_versions_pyelftools_sees() -> None:
    data = next(Path("/usr/lib/x86_64-linux-gnu").glob("libc.so.6")).read_bytes()
    defs = ours(data)["version_defs"]
    assert isinstance(defs, tuple) and "GLIBC_2.34" in defs and defs == oracle(data)["version_defs"]


_name = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_", min_size=1, max_size=12)
_dirs = st.lists(
    st.sampled_from(["$ORIGIN", "$ORIGIN/../lib", "/opt/x/lib", "/usr/local/cuda/lib64", "$LIB"]), max_size=3
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    soname=_name,
    needed=st.lists(_name, max_size=4, unique=True),
    dirs=_dirs,
    runpath=st.booleans(),
    nodeflib=st.booleans(),
    versions=st.lists(st.sampled_from(["V_1.0", "V_2.0", "LIB_3"]), max_size=3, unique=True),
)
def test_gcc_built_libraries_read_alike(
    tmp_path_factory: pytest.TempPathFactory,
    soname: str,
    needed: list[str],
    dirs: list[str],
    runpath: bool,
    nodeflib: bool,
    versions: list[str],
) -> None:
    work = tmp_path_factory.mktemp("oracle")
    deps = []
    for name in needed:
        gcc(work / f"lib{name}.so", "int x(void){return 1;}\n", soname=f"lib{name}.so.1")
        deps.append(f"-l{name}")
    args = [f"-L{work}", *deps]
    if dirs:
        args.append(f"-Wl,-rpath,{':'.join(dirs)}")
        args.append("-Wl,--enable-new-dtags" if runpath else "-Wl,--disable-new-dtags")
    if nodeflib:
        args.append("-Wl,-z,nodeflib")
    if versions:
        script = work / "v.map"
        chain = "".join(f"{v} {{ global: f{i}; }};\n" for i, v in enumerate(versions))
        script.write_text(chain + "LOCAL_ALL { local: *; };\n")
        args.append(f"-Wl,--version-script={script}")
    source = "".join(f"int f{i}(void){{return {i};}}\n" for i in range(max(1, len(versions))))
    lib = gcc(work / "libsubject.so", source, *args, soname=f"lib{soname}.so.1")
    data = lib.read_bytes()
    assert ours(data) == oracle(data)


SAMPLE = Path("/bin/true").read_bytes()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(flips=st.lists(st.tuples(st.integers(0, 4095), st.integers(0, 255)), min_size=1, max_size=12))
def test_corrupted_files_agree_or_are_refused(flips: list[tuple[int, int]]) -> None:
    data = bytearray(SAMPLE)
    for pos, value in flips:
        data[pos] = value
    blob = bytes(data)
    try:
        expected = oracle(blob)
    except (
        PyElfError,
        ValueError,
        KeyError,
        IndexError,
        AssertionError,
        UnicodeDecodeError,
        TypeError,
        OverflowError,
    ):
        # pyelftools refuses it (or trips over it); ours must not crash with anything but ElfError.
        with contextlib.suppress(elf.ElfError):
            ours(blob)
        return
    try:
        got = ours(blob)
    except elf.ElfError:
        return  # refusing a file pyelftools tolerates is allowed: the loader would refuse most of them too
    # Where both read it, the loader-relevant facts must be the same. Invalid UTF-8 is kept byte-exact by
    # ours (surrogateescape: the loader compares bytes) and replaced by pyelftools: compare as pyelftools.
    for key in ("soname", "needed", "rpath", "runpath", "interp"):
        assert _as_replaced(got[key]) == expected[key], key


def _as_replaced(value: object) -> object:
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    if isinstance(value, tuple):
        return tuple(_as_replaced(v) for v in value)
    return value


def test_a_load_segment_whose_offset_and_address_disagree_is_refused_as_ld_so_refuses_it() -> None:
    """Found by the fuzzing above (flip byte 184 of /bin/true to 4: a PT_LOAD's p_offset moved by 4): pyelftools
    reads names through the section headers, we read them through the segments the loader maps; ld.so refuses
    the file ("ELF load command address/offset not properly aligned"), and so do we."""
    import subprocess
    import tempfile

    data = bytearray(SAMPLE)
    data[184] = 4
    with pytest.raises(elf.ElfError, match="not properly aligned"):
        ours(bytes(data))
    with tempfile.NamedTemporaryFile(suffix=".so", delete=False) as fh:
        fh.write(bytes(data))
    loader = subprocess.run(
        ["/lib64/ld-linux-x86-64.so.2", "--list", fh.name], capture_output=True, text=True
    )
    Path(fh.name).unlink()
    assert loader.returncode != 0 and "aligned" in (loader.stdout + loader.stderr), loader


# ---- the file reader (pread, what `why` uses) against the buffer reader (what the oracle tests above hold) ----


def _from_file(data: bytes, tmp: Path) -> object:
    """``read_elf`` on ``data`` written to a file: the ElfInfo, or the ElfError's message."""
    path = tmp / "subject.so"
    path.write_bytes(data)
    try:
        return elf.read_elf(str(path))
    except elf.ElfError as exc:
        return f"ElfError: {exc}"


def _from_bytes(data: bytes) -> object:
    try:
        return elf.parse(data)
    except elf.ElfError as exc:
        return f"ElfError: {exc}"


@pytest.mark.parametrize("path", SYSTEM[::4], ids=lambda p: p.name)
def test_the_file_reader_reads_system_objects_as_the_buffer_reader(path: Path) -> None:
    assert elf.read_elf(str(path)) == elf.parse(path.read_bytes())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    flips=st.lists(st.tuples(st.integers(0, 4095), st.integers(0, 255)), min_size=1, max_size=12),
    cut=st.one_of(st.none(), st.integers(0, len(SAMPLE))),
)
def test_the_file_reader_agrees_on_corrupted_and_truncated_files(
    tmp_path: Path, flips: list[tuple[int, int]], cut: int | None
) -> None:
    data = bytearray(SAMPLE if cut is None else SAMPLE[:cut])
    for pos, value in flips:
        if pos < len(data):
            data[pos] = value
    blob = bytes(data)
    expected = _from_bytes(blob) if blob else "ElfError: file too short"
    assert _from_file(blob, tmp_path) == expected


def _synthetic(is64: bool, big: bool, *, soname: str, needed: list[str], runpath: str | None) -> bytes:
    """A minimal shared object of either class and byte order, laid out as a linker would (one PT_LOAD over the
    whole file, PT_DYNAMIC, a string table): the reader's non-native paths, which this machine's own files and
    gcc never exercise."""
    order: Literal["big", "little"] = "big" if big else "little"

    def pack(widths: tuple[int, ...], *values: int) -> bytes:
        return b"".join(v.to_bytes(w, order) for w, v in zip(widths, values, strict=True))

    ehsize, phentsize = (64, 56) if is64 else (52, 32)
    strings = b"\0"
    offsets = {}
    for s in (soname, *needed, *((runpath,) if runpath else ())):
        offsets[s] = len(strings)
        strings += s.encode() + b"\0"
    phoff = ehsize
    dyn_off = phoff + 2 * phentsize
    tags = [(1, offsets[n]) for n in needed] + [(14, offsets[soname])]
    if runpath:
        tags.append((29, offsets[runpath]))
    word = 8 if is64 else 4
    str_off = dyn_off + (len(tags) + 3) * 2 * word
    tags += [(5, str_off), (10, len(strings)), (0, 0)]
    dynamic = b"".join(pack((word, word), t, v) for t, v in tags)
    total = str_off + len(strings)
    ident = b"\x7fELF" + bytes([2 if is64 else 1, 2 if big else 1, 1, 0]) + bytes(8)
    machine = 43 if big else 62  # SPARC v9 / x86-64
    if is64:
        header = ident + pack((2, 2, 4, 8, 8, 8, 4, 2, 2, 2, 2, 2, 2),
                              3, machine, 1, 0, phoff, 0, 0, ehsize, phentsize, 2, 64, 0, 0)  # fmt: skip
        phdrs = pack((4, 4, 8, 8, 8, 8, 8, 8), 1, 5, 0, 0, 0, total, total, 0x1000) + pack(
            (4, 4, 8, 8, 8, 8, 8, 8), 2, 6, dyn_off, dyn_off, dyn_off, len(dynamic), len(dynamic), 8
        )
    else:
        header = ident + pack((2, 2, 4, 4, 4, 4, 4, 2, 2, 2, 2, 2, 2),
                              3, machine, 1, 0, phoff, 0, 0, ehsize, phentsize, 2, 40, 0, 0)  # fmt: skip
        phdrs = pack((4, 4, 4, 4, 4, 4, 4, 4), 1, 0, 0, 0, total, total, 5, 0x1000) + pack(
            (4, 4, 4, 4, 4, 4, 4, 4), 2, dyn_off, dyn_off, dyn_off, len(dynamic), len(dynamic), 6, 4
        )
    blob = header + phdrs + dynamic + strings
    assert len(blob) == total
    return blob


@pytest.mark.parametrize("is64", [True, False], ids=["64-bit", "32-bit"])
@pytest.mark.parametrize("big", [False, True], ids=["little-endian", "big-endian"])
def test_both_classes_and_byte_orders_read_as_pyelftools_reads_them(
    tmp_path: Path, is64: bool, big: bool
) -> None:
    data = _synthetic(
        is64, big, soname="libsyn.so.1", needed=["libc.so.6", "libm.so.6"], runpath="$ORIGIN/../lib"
    )
    info = elf.parse(data)
    assert (info.elf_class == 2) == is64 and info.big_endian == big
    assert (info.soname, info.needed, info.runpath) == (
        "libsyn.so.1",
        ("libc.so.6", "libm.so.6"),
        "$ORIGIN/../lib",
    )
    truth = oracle(data)
    assert (truth["soname"], truth["needed"], truth["runpath"]) == (info.soname, info.needed, info.runpath)
    assert _from_file(data, tmp_path) == info
