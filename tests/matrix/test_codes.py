"""One vocabulary: the catalogue, the docs table, and what the rules and the doctor actually emit."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from imagesmith.matrix.codes import CATALOGUE, Code

REPO = Path(__file__).resolve().parents[2]


def test_the_docs_table_is_the_catalogue() -> None:
    rows = re.findall(
        r"^\| `([A-Z_]+)` \| ([a-z-]+) \| ([a-z]+) \| (.+) \|$",
        (REPO / "docs/reason-codes.md").read_text(),
        re.M,
    )
    assert [(c, s, w, m) for c, s, w, m in rows] == [
        (i.code, i.severity, i.where, i.meaning) for i in CATALOGUE
    ]


def test_every_constant_is_catalogued_once() -> None:
    constants = {v for k, v in vars(Code).items() if k.isupper()}
    codes = [i.code for i in CATALOGUE]
    assert len(codes) == len(set(codes)) and set(codes) == constants
    assert all(k == v for k, v in vars(Code).items() if k.isupper())


def test_no_code_is_spelled_outside_the_vocabulary() -> None:
    """Findings and reasons take their code from ``Code``: a string literal ``code="..."`` would be a second
    home, and a typo there a code no script knows."""
    offenders = []
    for path in sorted((REPO / "imagesmith").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.keyword) and node.arg == "code" and isinstance(node.value, ast.Constant):
                offenders.append(f"{path.relative_to(REPO)}:{node.value.lineno}")
    assert not offenders, offenders
