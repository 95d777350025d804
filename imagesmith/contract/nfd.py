"""The doctor's Node Feature Discovery labels: names, value format, one writer and one reader.

``imagesmith doctor --nfd-features FILE`` writes a local feature file that NFD's worker reads from
``/etc/kubernetes/node-feature-discovery/features.d/``: one ``name=value`` per line; a name without a
namespace becomes the node label ``feature.node.kubernetes.io/<name>``. The fleet reads those labels back
(from the node, or from the file) with :func:`read_node_features`. Both sides live here so the names and
the value format cannot drift apart.

Every value is a valid Kubernetes label value (at most 63 characters of ``[A-Za-z0-9._-]``, starting and
ending alphanumeric); a fact the doctor does not know is left out rather than written empty. Reason codes
are joined with ``.`` (codes use ``[A-Z0-9_]``); when they do not fit in 63 characters the rest continue
in ``imagesmith-codes-2``, ``imagesmith-codes-3``, ... so nothing is lost.

Standard library only, and cheap to import: the doctor loads it only when ``--nfd-features`` is given.
"""

# The doctor writes this file in slim pods: os.path, not pathlib (~10 ms to import), as in the doctor.
# ruff: noqa: PTH100, PTH105, PTH108, PTH110, PTH112, PTH118

from __future__ import annotations

import os

from imagesmith.contract.record import record
from imagesmith.errors import EnvironmentProblem

TYPE_CHECKING = False  # mypy treats this name as True
if TYPE_CHECKING:
    from collections.abc import Mapping

# NFD turns a name without a namespace into a label under this prefix.
NFD_NAMESPACE = "feature.node.kubernetes.io/"
# Where NFD's worker reads local feature files, and the file name the doctor's manifests write there.
FEATURES_DIR = "/etc/kubernetes/node-feature-discovery/features.d"
FILE_NAME = "imagesmith"

SCHEMA_VERSION = "1"

PREFIX = "imagesmith-"
SCHEMA = PREFIX + "schema"  # this contract's version: 1
VERDICT = PREFIX + "verdict"  # ok | warn | fail (the doctor's status: ok | warning | error)
DRIVER = PREFIX + "driver"  # the driver version as the kernel module (or NVML) reports it: 570.124.06
DRIVER_MAJOR = PREFIX + "driver-major"  # its first component: 570
CUDA_MAX = PREFIX + "cuda-max"  # the newest CUDA the driver supports (cuDriverGetVersion/NVML): 12.8
GPU_COUNT = PREFIX + "gpu-count"  # GPUs NVML sees (else the kernel module's /proc entries): 8
GPU_PRODUCT = PREFIX + "gpu-product"  # the first GPU's NVML name, spaces as '-': NVIDIA-H100-80GB-HBM3
GPU_COMPUTE = PREFIX + "gpu-compute"  # the first GPU's compute capability: 9.0
CODES = PREFIX + "codes"  # the error and warning codes, errors first, joined with '.'; none: 'none'
VERSION = PREFIX + "version"  # the imagesmith that wrote the file: 0.1.0

# Every name, in the order the file lists them (continuations of CODES follow it).
NAMES = (
    SCHEMA,
    VERDICT,
    DRIVER,
    DRIVER_MAJOR,
    CUDA_MAX,
    GPU_COUNT,
    GPU_PRODUCT,
    GPU_COMPUTE,
    CODES,
    VERSION,
)

VERDICTS = ("ok", "warn", "fail")
# The doctor's status (Diagnosis.status) -> the label's verdict.
VERDICT_OF_STATUS = {"ok": "ok", "warning": "warn", "error": "fail"}
NO_CODES = "none"
MAX_VALUE = 63

_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_VALUE_CHARS = _ALNUM | frozenset("._-")


@record
class NodeFeatures:
    """What the doctor says about a node, as the labels carry it. ``None``/empty: not known."""

    verdict: str  # one of VERDICTS
    codes: tuple[str, ...] = ()
    driver: str | None = None
    driver_major: int | None = None
    cuda_max: str | None = None
    gpu_count: int | None = None
    gpu_product: str | None = None
    gpu_compute: str | None = None
    version: str | None = None
    schema: str = SCHEMA_VERSION


def is_label_value(value: str) -> bool:
    """Kubernetes' rule for a label value: empty, or <= 63 of [A-Za-z0-9._-] with alphanumeric ends."""
    if value == "":
        return True
    return (
        len(value) <= MAX_VALUE
        and all(c in _VALUE_CHARS for c in value)
        and value[0] in _ALNUM
        and value[-1] in _ALNUM
    )


def label_value(text: str) -> str:
    """``text`` made a valid label value: other characters become '-', the ends are trimmed to
    alphanumerics, and it is cut to 63 characters (``NVIDIA H100 80GB HBM3`` -> ``NVIDIA-H100-80GB-HBM3``)."""
    cleaned = "".join(c if c in _VALUE_CHARS else "-" for c in text.strip())
    cleaned = cleaned[:MAX_VALUE]
    start, end = 0, len(cleaned)
    while start < end and cleaned[start] not in _ALNUM:
        start += 1
    while end > start and cleaned[end - 1] not in _ALNUM:
        end -= 1
    return cleaned[start:end]


def _code_values(codes: tuple[str, ...]) -> list[str]:
    """The codes packed into label values of at most 63 characters each, in order."""
    values: list[str] = []
    current = ""
    for code in codes:
        piece = label_value(code)
        if not piece:
            continue
        if current and len(current) + 1 + len(piece) <= MAX_VALUE:
            current += "." + piece
        else:
            if current:
                values.append(current)
            current = piece
    if current:
        values.append(current)
    return values or [NO_CODES]


def _codes_name(index: int) -> str:
    return CODES if index == 0 else f"{CODES}-{index + 1}"


def to_labels(features: NodeFeatures) -> dict[str, str]:
    """The feature file's names and values, in file order; unknown facts are left out."""
    if features.verdict not in VERDICTS:
        raise ValueError(f"verdict must be one of {', '.join(VERDICTS)}: {features.verdict!r}")
    out: dict[str, str] = {SCHEMA: features.schema, VERDICT: features.verdict}
    facts: tuple[tuple[str, object], ...] = (
        (DRIVER, features.driver),
        (DRIVER_MAJOR, features.driver_major),
        (CUDA_MAX, features.cuda_max),
        (GPU_COUNT, features.gpu_count),
        (GPU_PRODUCT, features.gpu_product),
        (GPU_COMPUTE, features.gpu_compute),
    )
    for name, value in facts:
        text = label_value(str(value)) if value is not None else ""
        if text:
            out[name] = text
    for index, value in enumerate(_code_values(features.codes)):
        out[_codes_name(index)] = value
    if features.version:
        text = label_value(features.version)
        if text:
            out[VERSION] = text
    return out


def format_features(features: NodeFeatures) -> str:
    """The feature file's text: ``name=value`` lines, no comments (older NFD workers read every line)."""
    return "".join(f"{name}={value}\n" for name, value in to_labels(features).items())


def parse_features(text: str) -> dict[str, str]:
    """A feature file's ``name -> value``, read as NFD's worker reads it: blank lines and ``#`` lines
    (comments, ``# +expiry-time=`` directives) skipped, a name without ``=`` is ``true``, the last
    occurrence wins. Names are returned as written (no ``feature.node.kubernetes.io/`` prefix)."""
    out: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, eq, value = line.partition("=")
        out[name] = value if eq else "true"
    return out


def _int(value: str | None) -> int | None:
    return int(value) if value is not None and value.isdigit() else None


def read_node_features(labels: Mapping[str, str]) -> NodeFeatures | None:
    """The doctor's facts from a feature file (:func:`parse_features`) or from a node's labels (with the
    ``feature.node.kubernetes.io/`` prefix); ``None`` when the doctor has not labelled this node."""
    own: dict[str, str] = {}
    for key, value in labels.items():
        name = key.removeprefix(NFD_NAMESPACE)
        if name.startswith(PREFIX):
            own[name] = value
    verdict = own.get(VERDICT)
    if verdict not in VERDICTS:
        return None
    assert verdict is not None
    codes: list[str] = []
    index = 0
    while _codes_name(index) in own:
        value = own[_codes_name(index)]
        if value != NO_CODES:
            codes += value.replace(".", " ").split()  # codes are [A-Z0-9_]: '.' only joins them
        index += 1
    return NodeFeatures(
        verdict=verdict,
        codes=tuple(codes),
        driver=own.get(DRIVER),
        driver_major=_int(own.get(DRIVER_MAJOR)),
        cuda_max=own.get(CUDA_MAX),
        gpu_count=_int(own.get(GPU_COUNT)),
        gpu_product=own.get(GPU_PRODUCT),
        gpu_compute=own.get(GPU_COMPUTE),
        version=own.get(VERSION),
        schema=own.get(SCHEMA, SCHEMA_VERSION),
    )


def write_features(path: str, features: NodeFeatures) -> None:
    """Write the feature file atomically: a hidden temporary file in the same directory (NFD skips names
    starting with '.'), fsync, then rename over ``path``, so NFD never reads half a file.
    ``EnvironmentProblem`` naming ``path`` when the directory is missing or not writable."""
    data = format_features(features).encode("ascii")
    directory, base = os.path.split(os.path.abspath(path))
    if not base:
        raise EnvironmentProblem("not a file name", where=path)
    if not os.path.isdir(directory):
        why = "is not a directory" if os.path.exists(directory) else "does not exist"
        raise EnvironmentProblem(f"directory {directory} {why}", where=path)
    if os.path.isdir(path):
        raise EnvironmentProblem("is a directory (give a file name inside it)", where=path)
    tmp = os.path.join(directory, f".{base}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as exc:
        try:  # noqa: SIM105 - contextlib is another import the doctor avoids
            os.unlink(tmp)
        except OSError:
            pass
        raise EnvironmentProblem(f"cannot write: {exc.strerror or exc}", where=path) from None
