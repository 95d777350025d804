"""Fixtures for the fleet core: the recorded nodes and pods (tests/fleet/fixtures, the shapes of `kubectl get -o
json`) and the labels the curated torch 2.11 images carry, written from the matrix as the plan writes them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from imagesmith.contract.labels import ImageLabels
from imagesmith.contract.sm import format_sm
from imagesmith.images.plan import driver_floors
from imagesmith.matrix import knowledge

FIXTURES = Path(__file__).parent / "fixtures"
REGISTRY = "localhost:5000/team/torch"


def torch_labels(variant: str) -> dict[str, str]:
    """io.imagesmith.* of the curated torch 2.11 <variant> runtime image, as images/plan.py writes them."""
    kb = knowledge.load()
    build = next(b for b in kb.builds("torch") if b.release == "2.11" and b.variant == variant)
    floor, full = driver_floors(kb, build.cuda)
    return ImageLabels(
        framework=f"torch==2.11.0+{variant}",
        cuda=str(build.cuda),
        min_driver=str(floor) if floor else None,
        full_driver=str(full) if full else None,
        sm=tuple(
            format_sm((c.sm for c in build.sass), (f"compute_{p.major}{p.minor}" for p in build.ptx)).split(
                ","
            )
        ),
        variant="runtime",
    ).to_labels()


@pytest.fixture(scope="session")
def images_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("images") / "images.json"
    table: dict[str, Any] = {
        f"{REGISTRY}:2.11-{v}-runtime": {"labels": torch_labels(v)} for v in ("cu126", "cu128", "cu130")
    }
    table["busybox:1.36"] = {"labels": {}}
    path.write_text(json.dumps(table, indent=1))
    return path


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return data
