"""`make e2e`: the deep harvest of a full torch wheel (~1 GB from PyPI): its fatbins agree with the data."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e]


def test_deep_harvest_of_the_pypi_torch_wheel_confirms_the_data() -> None:
    exe = str(Path(sys.executable).with_name("imagesmith"))
    done = subprocess.run(
        [
            exe,
            "matrix",
            "harvest",
            "--deep",
            "--ca-cert",
            "/etc/ssl/certs/ca-certificates.crt",
            "torch==2.13.0",
        ],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = {
        line.split(":")[1].split("=")[0].strip(): line
        for line in done.stdout.splitlines()
        if "torch 2.13.0:" in line
    }
    for key in ("cuda", "cudnn", "sass", "ptx"):
        assert lines[key].strip().startswith("confirmed"), done.stdout
    assert "fatbin libtorch_cuda.so = sass 7.5 8.0 8.6 9.0 10.0 12.0; ptx -;" in done.stdout
