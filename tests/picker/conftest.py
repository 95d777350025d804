from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from imagesmith.picker import catalog, generate

FIXTURES = Path(__file__).parent / "fixtures" / "providers"


@pytest.fixture
def sources(tmp_path: Path) -> Path:
    """A writable copy of the provider-format fixtures, for tests that break them on purpose."""
    dest = tmp_path / "sources"
    shutil.copytree(FIXTURES, dest)
    return dest


@pytest.fixture
def fixture_catalog(tmp_path: Path) -> catalog.Catalog:
    out = tmp_path / "catalog"
    generate.generate(sources=FIXTURES, out_dir=out)
    return catalog.load(out)


@pytest.fixture(scope="session")
def shipped() -> catalog.Catalog:
    return catalog.load(catalog.DATA_DIR)
