"""Malformed data is reported with its file and line, and never as a traceback."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from imagesmith.errors import DataError, UnknownName
from imagesmith.matrix.knowledge import DATA_DIR, Knowledge
from imagesmith.matrix.versions import NvVersion


def copy_data(tmp_path: Path) -> Path:
    target = tmp_path / "data"
    shutil.copytree(DATA_DIR, target)
    return target


def test_bad_capability_names_file_and_line(tmp_path: Path) -> None:
    data = copy_data(tmp_path)
    gpus = data / "gpus.toml"
    text = gpus.read_text()
    lines = text.splitlines()
    index = next(i for i, line in enumerate(lines) if re.match(r'capability\s*=\s*"9\.0"', line))
    lines[index] = 'capability = "nine"'
    gpus.write_text("\n".join(lines) + "\n")
    header = max(i for i in range(index) if lines[i].startswith("[[gpu]]")) + 1
    with pytest.raises(DataError) as info:
        Knowledge(data).validate()
    assert info.value.where == f"gpus.toml:{header}"
    assert "capability" in info.value.message


def test_missing_source_is_rejected(tmp_path: Path) -> None:
    data = copy_data(tmp_path)
    path = data / "drivers.toml"
    text = path.read_text()
    start = text.index("[[branch]]")
    end = text.index("\n", text.index("source", start))
    path.write_text(text[:start] + text[start:end].replace("source", "#source") + text[end:])
    with pytest.raises(DataError, match="source") as info:
        Knowledge(data).validate()
    assert info.value.where is not None and info.value.where.startswith("drivers.toml:")


def test_toml_syntax_error_has_a_line(tmp_path: Path) -> None:
    data = copy_data(tmp_path)
    (data / "cuda.toml").write_text("[[family]]\nmajor = \n")
    with pytest.raises(DataError) as info:
        Knowledge(data).validate()
    assert info.value.where == "cuda.toml:2"


def test_unknown_gpu_suggests_close_names() -> None:
    kb = Knowledge()
    with pytest.raises(UnknownName) as info:
        kb.find_gpu("H1000")
    assert any("H100" in s for s in info.value.suggestions)


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ("H100", "H100 SXM"),
        ("a100-80gb", "A100 80GB"),
        ("L4", "L4"),
        ("RTX 4090", "GeForce RTX 4090"),
        ("K80", "Tesla K80"),
    ],
)
def test_gpu_names_and_aliases(query: str, name: str) -> None:
    assert Knowledge().find_gpu(query).name == name


def test_capability_queries() -> None:
    kb = Knowledge()
    assert kb.find_gpu("sm_90").capability == NvVersion.parse("9.0")
    assert kb.find_gpu("8.6").architecture == "Ampere"


def test_driver_versions_keep_their_spelling() -> None:
    v = NvVersion.parse("580.65.06")
    assert str(v) == "580.65.06" and v == NvVersion.parse("580.65.6") and v > NvVersion.parse("580.65.5")
    with pytest.raises(ValueError):
        NvVersion.parse("535.x")
