"""The ``io.imagesmith.*`` labels every curated image carries: keys, and one record that writes and reads them.

``unknown`` and ``none`` are written where the plan has no value (a base image has no CUDA); reading
turns both back into None, so no caller compares against those strings.
"""

from __future__ import annotations

from collections.abc import Mapping

from imagesmith.contract.record import record
from imagesmith.contract.sm import NONE, format_sm, parse_sm

PREFIX = "io.imagesmith."
FRAMEWORK = PREFIX + "framework"
CUDA = PREFIX + "cuda"
CUDNN = PREFIX + "cudnn"
MIN_DRIVER = PREFIX + "min-driver"
FULL_DRIVER = PREFIX + "full-driver"
SM = PREFIX + "sm"
PYTHON = PREFIX + "python"
VARIANT = PREFIX + "variant"
OS = PREFIX + "os"
# The imagesmith release the image carries (the policy's imagesmith-version, else the one that rendered it).
TOOL_VERSION = PREFIX + "version"
# Set by the builder, not the plan: the hash of everything that went into the image.
INPUT_HASH = PREFIX + "input-hash"
# Set at render from the image's lock: the fingerprint of the pins it installs ("none": built unlocked).
LOCK = PREFIX + "lock"
# Where the image keeps its CycloneDX SBOM (a path inside the image).
SBOM = PREFIX + "sbom"
SBOM_PATH = "/opt/imagesmith/sbom.cdx.json"

OCI_TITLE = "org.opencontainers.image.title"
OCI_DESCRIPTION = "org.opencontainers.image.description"
OCI_VERSION = "org.opencontainers.image.version"
OCI_VENDOR = "org.opencontainers.image.vendor"
OCI_AUTHORS = "org.opencontainers.image.authors"
OCI_BASE_NAME = "org.opencontainers.image.base.name"
OCI_BASE_DIGEST = "org.opencontainers.image.base.digest"

UNKNOWN = "unknown"


def _read(labels: Mapping[str, str], key: str) -> str | None:
    value = labels.get(key)
    if value is None:
        return None
    text = str(value).strip()
    return None if text in ("", UNKNOWN, NONE) else text


@record
class ImageLabels:
    """What an image promises about itself; None where it promises nothing."""

    variant: str | None = None
    python: str | None = None
    os: str | None = None
    framework: str | None = None
    cuda: str | None = None
    cudnn: str | None = None
    min_driver: str | None = None
    full_driver: str | None = None
    sm: tuple[str, ...] = ()

    @property
    def has_cuda(self) -> bool:
        return self.cuda is not None

    def to_labels(self) -> dict[str, str]:
        """The label map; CUDA keys only for images that carry CUDA."""
        out: dict[str, str] = {}
        for key, value in ((VARIANT, self.variant), (PYTHON, self.python), (OS, self.os)):
            if value is not None:
                out[key] = value
        if self.framework is not None or self.cuda is not None:
            out[FRAMEWORK] = self.framework or UNKNOWN
            out[CUDA] = self.cuda or UNKNOWN
            out[CUDNN] = self.cudnn or NONE
            out[MIN_DRIVER] = self.min_driver or UNKNOWN
            out[FULL_DRIVER] = self.full_driver or UNKNOWN
            out[SM] = format_sm(self.sm) or NONE
        return out

    @classmethod
    def from_labels(cls, labels: Mapping[str, str]) -> ImageLabels:
        return cls(
            variant=_read(labels, VARIANT),
            python=_read(labels, PYTHON),
            os=_read(labels, OS),
            framework=_read(labels, FRAMEWORK),
            cuda=_read(labels, CUDA),
            cudnn=_read(labels, CUDNN),
            min_driver=_read(labels, MIN_DRIVER),
            full_driver=_read(labels, FULL_DRIVER),
            sm=parse_sm(labels.get(SM)),
        )


def supply_chain(*, lock_digest: str | None) -> dict[str, str]:
    """The lock and SBOM labels every rendered image carries."""
    return {LOCK: lock_digest or NONE, SBOM: SBOM_PATH}


def ours(labels: Mapping[str, str]) -> dict[str, str]:
    """Only the ``io.imagesmith.*`` labels of a label map."""
    return {k: v for k, v in labels.items() if str(k).startswith(PREFIX)}


def oci(
    *, title: str, description: str, version: str, vendor: str, authors: str, base_name: str
) -> dict[str, str]:
    return {
        OCI_TITLE: title,
        OCI_DESCRIPTION: description,
        OCI_VERSION: version,
        OCI_VENDOR: vendor,
        OCI_AUTHORS: authors,
        OCI_BASE_NAME: base_name,
    }
