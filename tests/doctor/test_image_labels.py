"""``imagesmith doctor --image``: labels read from the real Docker engine, judged against a fake node."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.doctor.conftest import Node, codes

TAG = "imagesmith-doctor-test:labels"


@pytest.mark.docker
@pytest.mark.usefixtures("docker_engine")  # starts dockerd when none answers (tests/conftest.py)
def test_image_labels_against_old_driver_and_new_gpu(bare_node: Node, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        "FROM scratch\n"
        'LABEL io.imagesmith.cuda=13.0 io.imagesmith.min-driver=580.65.06 io.imagesmith.sm="8.0,9.0"\n'
    )
    build = subprocess.run(
        ["docker", "build", "-q", "-t", TAG, str(ctx)], capture_output=True, text=True, timeout=300
    )
    if build.returncode != 0:
        pytest.fail(f"docker build failed (is the engine running?): {build.stderr.strip()[-300:]}")
    bare_node.gpu_node("570.86.10", cuda=12080, gpu="NVIDIA GeForce RTX 5090", brand=5, cc=(12, 0))
    report = bare_node.diagnose("--image", TAG)
    found = codes(report)
    assert report["_rc"] == 1 and report["image"] == TAG
    assert found["DRIVER_TOO_OLD"]["severity"] == "error"
    assert "sm_120" in found["NO_KERNEL_IMAGE"]["message"]
