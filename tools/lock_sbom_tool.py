"""Regenerate imagesmith/images/data/sbom-tool.lock: the hash-locked CycloneDX library each image's SBOM stage
installs (into a throwaway stage, never into the image). Pure-Python packages, resolved for the oldest
Python the images support; a superset for newer ones (an unneeded typing-extensions is harmless).

    .venv/bin/python tools/lock_sbom_tool.py [--ca-cert /etc/ssl/certs/ca-certificates.crt]
"""

from __future__ import annotations

import sys
from pathlib import Path

from imagesmith.images import lock

REQUIREMENT = "cyclonedx-python-lib==11.12.0"
OUT = Path(__file__).resolve().parents[1] / "imagesmith" / "images" / "data" / "sbom-tool.lock"


def main() -> int:
    ca = Path(sys.argv[sys.argv.index("--ca-cert") + 1]) if "--ca-cert" in sys.argv else None
    request = lock.LockRequest(
        image="sbom-tool",
        parent=None,
        requirements=(REQUIREMENT,),
        python="3.11",
        platform="x86_64-manylinux_2_28",
        index=lock.PYPI,
        extra_index=None,
    )
    uv = lock.uv_binary()
    result = lock.resolve(
        request,
        parent=None,
        ancestors=(),
        previous=None,
        upgrade=False,
        uv=uv,
        resolver=lock.uv_version(uv),
        ca_cert=ca,
    )
    OUT.write_text(result.dumps(), encoding="utf-8")
    print(f"wrote {OUT} ({len(result.pins)} packages)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
