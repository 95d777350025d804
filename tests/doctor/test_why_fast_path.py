"""The `doctor why` fast path: its hand-made parts behave like the standard ones they replace.

`why` avoids dataclasses, argparse and json to stay inside its 40 ms budget (bench/bench_doctor.py);
each replacement is checked here against the real thing, and the import list is pinned so a stray
heavy import shows up as a failing test rather than as a slow pod.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from imagesmith.contract.record import FrozenRecordError, as_dict, field, record
from imagesmith.doctor.cli import parse_doctor, parse_why
from imagesmith.doctor.loader import fsroot, jsonout, loaderconf, resolver, why
from imagesmith.errors import UsageError
from tests.doctor.conftest import build_lib


@record
class _Point:
    x: int
    label: str | None = None
    tags: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True, kw_only=True)
class _DataPoint:
    x: int
    label: str | None = None
    tags: tuple[str, ...] = ()


def test_record_behaves_like_a_frozen_keyword_only_dataclass() -> None:
    p = _Point(x=1, tags=("a",))
    d = _DataPoint(x=1, tags=("a",))
    assert (p.x, p.label, p.tags) == (d.x, d.label, d.tags)
    assert repr(p) == repr(d).replace("_DataPoint", "_Point")
    assert p == _Point(x=1, tags=("a",)) and p != _Point(x=2) and p != d
    assert hash(p) == hash(_Point(x=1, tags=("a",)))
    assert len({p, _Point(x=1, tags=("a",)), _Point(x=1)}) == 2
    with pytest.raises(TypeError):
        _Point(1)  # type: ignore[misc]
    with pytest.raises(TypeError):
        _Point(label="no x")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unexpected keyword argument"):
        _Point(x=1, y=2)  # type: ignore[call-arg]
    with pytest.raises(FrozenRecordError):
        p.x = 2  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del p.label  # type: ignore[misc]
    match p:
        case _Point(x=1, label=None):
            pass
        case _:
            pytest.fail("keyword pattern did not match")


@record
class _Bag:
    name: str
    items: dict[str, int] = field(default_factory=dict)


def test_record_field_factories_make_a_fresh_value_per_record() -> None:
    a, b = _Bag(name="a"), _Bag(name="b")
    a.items["x"] = 1
    assert b.items == {} and a.items == {"x": 1}
    assert _Bag(name="c", items={"y": 2}).items == {"y": 2}
    assert as_dict(a) == {"name": "a", "items": {"x": 1}}
    assert "items" not in vars(_Bag)  # the factory marker does not linger as a class attribute


def test_record_refuses_a_mutable_default() -> None:
    with pytest.raises(TypeError, match="mutable default"):

        @record
        class _Bad:
            items: list[str] = []  # noqa: RUF012


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(_json_values)
def test_dumps_is_json_dumps_indent_2(document: object) -> None:
    assert jsonout.dumps(document) == json.dumps(document, indent=2)


# Every code point, lone surrogates included: a file name read with surrogateescape carries them.
@given(st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF, blacklist_categories=())))
def test_quote_escapes_as_json_does(text: str) -> None:
    """The escaping written out in jsonout (no _json extension on the why path), held to json's own."""
    assert jsonout.quote(text) == json.dumps(text)


@pytest.mark.parametrize(
    "text", ["", "plain/path.so.1", 'q"uote', "back\\slash", "\x00\x1f\x7f", "lïb", "\U0001f600", "\udc80"]
)
def test_quote_on_the_edges(text: str) -> None:
    assert jsonout.quote(text) == json.dumps(text)


def test_dumps_of_a_resolved_tree(tmp_path: Path) -> None:
    libdir = tmp_path / "lïb"  # non-ASCII paths are escaped the way json escapes them
    libdir.mkdir()
    dep = build_lib(libdir / "libdep.so.1", "dep")
    top = build_lib(tmp_path / "libtop.so", "top", needs=(("libdep.so.1", libdir),), runpath="$ORIGIN/lïb")
    res = resolver.why(str(top), loaderconf.detect())
    assert res.main is not None
    document = why.to_json(res, res.main.path)
    assert jsonout.dumps(document) == json.dumps(document, indent=2)
    assert json.loads(jsonout.dumps(document))["libraries"][0]["path"] == str(dep)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["f"], ("f", "/", False)),
        (["--json", "f"], ("f", "/", True)),
        (["f", "--root", "/r", "--json"], ("f", "/r", True)),
        (["--root=/r", "f"], ("f", "/r", False)),
        (["--", "--json"], ("--json", "/", False)),
        (["-h"], None),
        (["f", "--help"], None),
    ],
)
def test_parse_why_accepts(argv: list[str], expected: tuple[str, str, bool] | None) -> None:
    assert parse_why(argv) == expected


@pytest.mark.parametrize(
    ("argv", "where"),
    [
        ([], "why"),
        (["--json"], "why"),
        (["--root"], "--root"),
        (["--root="], "--root"),
        (["--bogus", "f"], "doctor why --bogus"),
        (["a", "b"], "doctor why b"),
    ],
)
def test_parse_why_refuses(argv: list[str], where: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_why(argv)
    assert caught.value.where == where


def test_parse_doctor() -> None:
    args = parse_doctor(["--json", "--root=/r", "--image", "img:1", "--probe-timeout", "2.5", "--no-probe"])
    assert args is not None
    assert (args.json, args.root, args.image, args.probe_timeout, args.no_probe, args.strict) == (
        True, "/r", "img:1", 2.5, True, False)  # fmt: skip
    defaults = parse_doctor([])
    assert defaults is not None and (defaults.root, defaults.image, defaults.probe_timeout) == (
        "/",
        None,
        10.0,
    )
    assert parse_doctor(["--strict", "--help"]) is None
    for argv, where in (
        (["--probe-timeout", "soon"], "--probe-timeout soon"),
        (["--probe-timeout", "-1"], "--probe-timeout -1"),
        (["--image"], "--image"),
        (["extra"], "doctor extra"),
        (["--jsn"], "doctor --jsn"),
    ):
        with pytest.raises(UsageError) as caught:
            parse_doctor(argv)
        assert caught.value.where == where, argv


def test_why_imports_nothing_heavy() -> None:
    code = (
        "import sys, io, contextlib; from imagesmith.__main__ import main;\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out): rc = main(['doctor', 'why', sys.executable, '--json'])\n"
        "heavy = ('dataclasses', 'argparse', 'json', 're', 'typing', 'inspect', 'subprocess', 'elftools', 'shutil')\n"
        "print(rc, sorted(m for m in heavy if m in sys.modules))"
    )
    # -S: no site hooks (a .pth file may import re or typing on its own); -I would drop the checkout.
    proc = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, check=False,
                          env={"PYTHONPATH": ":".join(sys.path)})  # fmt: skip
    assert proc.stdout.strip() == "0 []", proc.stdout + proc.stderr


_glob_chars = st.sampled_from(["a", "b", "c", ".", "1", "2", "_"])
_pattern_parts = st.sampled_from(["a", "b", "c", ".", "1", "*", "?", "[ab]", "[!a]", "[0-9]", "[a-c]", "_"])


@given(st.lists(_glob_chars, max_size=8).map("".join), st.lists(_pattern_parts, max_size=6).map("".join))
def test_match_is_fnmatchcase(name: str, pattern: str) -> None:
    import fnmatch

    assert fsroot.match(name, pattern) == fnmatch.fnmatchcase(name, pattern)


def test_glob_is_sorted_glob(tmp_path: Path) -> None:
    import glob as std

    for rel in ("usr/lib/python3.11/site-packages/nvidia/cublas/lib/libcublasLt.so.12",
                "usr/lib/python3.12/site-packages/nvidia/cu13/lib/libcudart.so.13", "usr/lib/.hidden/x",
                "usr/local/cuda-12.1/lib64/libcudart.so.12", "usr/local/cuda-12.4/targets/x86_64-linux/lib/stubs/libcuda.so",
                "opt/conda/lib/libcublas.so.12"):  # fmt: skip
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("")
    (tmp_path / "usr/local/cuda").symlink_to("cuda-12.4")
    base = str(tmp_path)
    for pattern in ("/usr/lib/python3*/site-packages", "/usr/lib/python3*/site-packages/nvidia/*/lib",
                    "/usr/lib/python3*/site-packages/nvidia/cu1[0-9]/lib/libcudart.so.*[0-9]",
                    "/usr/local/cuda-*/lib64", "/usr/local/cuda*/targets/*/lib/stubs", "/usr/lib/*",
                    "/opt/conda/lib", "/opt/none/*", "/usr/lib/python3.11/site-packages/nvidia/cublas/lib/libcublasLt.so.*[0-9]"):  # fmt: skip
        assert fsroot.glob(base + pattern) == sorted(std.glob(base + pattern)), pattern
