"""``imagesmith doctor manifest``: a DaemonSet (or a Job) that runs the doctor on every GPU node and leaves its
verdict as Node Feature Discovery labels (``feature.node.kubernetes.io/imagesmith-*``).

Standard library only, like the rest of the doctor: the YAML is written by a small emitter (every string
double-quoted, JSON-style, which YAML reads the same), not PyYAML.
"""

from __future__ import annotations

from imagesmith import __version__
from imagesmith.contract.nfd import FEATURES_DIR, FILE_NAME
from imagesmith.errors import UsageError

KINDS = ("daemonset", "job")
DEFAULT_IMAGE = f"imagesmith:{__version__}"
DEFAULT_NAMESPACE = "imagesmith"
DEFAULT_INTERVAL = "10m"
DEFAULT_FEATURES_DIR = FEATURES_DIR
NAME = "imagesmith-doctor"
CACHE_DIR = "/var/cache/imagesmith"

_UNITS = {"s": 1, "m": 60, "h": 3600}

HEADER = """\
# imagesmith doctor on GPU nodes. It writes the Node Feature Discovery feature file
#   {path}
# which NFD's worker turns into the node labels feature.node.kubernetes.io/imagesmith-* (verdict,
# driver, CUDA, GPUs, reason codes; see docs/doctor.md).
# - The NVIDIA runtime (runtimeClassName: nvidia) with NVIDIA_VISIBLE_DEVICES=all mounts the driver and
#   every GPU without taking an nvidia.com/gpu from the device plugin, as GPU Feature Discovery does
#   (a device plugin set to ignore NVIDIA_VISIBLE_DEVICES from unprivileged pods shows no GPU here).
#   NVIDIA_DRIVER_CAPABILITIES is compute,utility, not utility alone: without 'compute' libcuda is not
#   mounted and the doctor would (rightly) report DRIVER_CAPABILITIES on every node. The doctor never
#   creates a CUDA context: its probe calls cuDriverGetVersion, cuInit and NVML in a child process.
# - It runs as root (runAsUser: 0) because the features directory is a root-owned (0755) hostPath that
#   NFD reads; root is all it gets: every capability dropped (the owner needs none to write its own
#   directory), no privilege escalation, a read-only root filesystem, no service account token. To run
#   as non-root, make the host directory writable by a chosen uid on the node and set runAsUser to it.
# - The hostPath is DirectoryOrCreate so the doctor can be installed before NFD; NFD skips the
#   doctor's hidden temporary file, and the rename makes each update atomic.
"""


def parse_interval(text: str) -> int:
    """``10m``, ``90s``, ``1h`` or plain seconds -> seconds; ``UsageError`` naming ``--interval``."""
    raw = text.strip()
    unit = raw[-1:] if raw[-1:] in _UNITS else "s"
    number = raw[:-1] if raw[-1:] in _UNITS else raw
    if not number.isdigit() or int(number) <= 0:
        raise UsageError("expected a positive duration like 10m, 90s or 1h", where=f"--interval {text}")
    return int(number) * _UNITS[unit]


def _check_name(value: str, flag: str) -> None:
    """A DNS-1123 label (namespace names): lower-case alphanumerics and '-', at most 63."""
    ok = (
        0 < len(value) <= 63
        and all(c.isascii() and (c.islower() or c.isdigit() or c == "-") for c in value)
        and value[0] != "-"
        and value[-1] != "-"
    )
    if not ok:
        raise UsageError("not a valid namespace name (lower-case a-z, 0-9, '-')", where=f"{flag} {value}")


def _shell_quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


def pod_spec(*, image: str, features_dir: str, command: list[str], restart: str) -> dict[str, object]:
    return {
        "runtimeClassName": "nvidia",
        "nodeSelector": {"nvidia.com/gpu.present": "true"},
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        "automountServiceAccountToken": False,
        "restartPolicy": restart,
        "securityContext": {"runAsUser": 0, "runAsGroup": 0, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [
            {
                "name": "doctor",
                "image": image,
                "imagePullPolicy": "IfNotPresent",
                "command": command,
                "env": [
                    {"name": "NVIDIA_VISIBLE_DEVICES", "value": "all"},
                    {"name": "NVIDIA_DRIVER_CAPABILITIES", "value": "compute,utility"},
                    {"name": "XDG_CACHE_HOME", "value": CACHE_DIR},
                ],
                "resources": {
                    "requests": {"cpu": "10m", "memory": "64Mi"},
                    "limits": {"cpu": "500m", "memory": "256Mi"},
                },
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "readOnlyRootFilesystem": True,
                    "capabilities": {"drop": ["ALL"]},
                },
                "volumeMounts": [
                    {"name": "features", "mountPath": features_dir},
                    {"name": "cache", "mountPath": CACHE_DIR},
                ],
            }
        ],
        "volumes": [
            {"name": "features", "hostPath": {"path": features_dir, "type": "DirectoryOrCreate"}},
            {"name": "cache", "emptyDir": {"sizeLimit": "64Mi"}},
        ],
    }


def manifest(
    kind: str,
    *,
    image: str = DEFAULT_IMAGE,
    namespace: str = DEFAULT_NAMESPACE,
    features_dir: str = DEFAULT_FEATURES_DIR,
    interval_s: int = 600,
) -> dict[str, object]:
    """The DaemonSet or Job as a document (``UsageError`` for a bad kind, namespace or directory)."""
    if kind not in KINDS:
        raise UsageError(f"expected one of {', '.join(KINDS)}", where=f"--kind {kind}")
    _check_name(namespace, "--namespace")
    if not features_dir.startswith("/"):
        raise UsageError("must be an absolute path on the node", where=f"--features-dir {features_dir}")
    features_dir = features_dir.rstrip("/") or "/"
    target = f"{features_dir}/{FILE_NAME}" if features_dir != "/" else f"/{FILE_NAME}"
    labels = {"app.kubernetes.io/name": NAME, "app.kubernetes.io/component": "nfd-features"}
    doctor = f"imagesmith doctor --nfd-features {_shell_quote(target)}"
    # Exit 0 and 1 are verdicts (the labels are written either way); 2 and 3 mean no labels were written.
    once = f'{doctor}; rc=$?; [ "$rc" -le 1 ]'
    meta = {"name": NAME, "namespace": namespace, "labels": labels}
    if kind == "job":
        spec = pod_spec(
            image=image, features_dir=features_dir, command=["/bin/sh", "-c", once], restart="Never"
        )
        return {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": meta,
            "spec": {
                "backoffLimit": 2,
                "ttlSecondsAfterFinished": 3600,
                "template": {"metadata": {"labels": labels}, "spec": spec},
            },
        }
    # Re-run so the labels follow driver upgrades; a failed write is logged and retried next round.
    loop = f"while true; do {doctor}; sleep {interval_s}; done"
    spec = pod_spec(image=image, features_dir=features_dir, command=["/bin/sh", "-c", loop], restart="Always")
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": meta,
        "spec": {
            "selector": {"matchLabels": labels},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "10%"}},
            "template": {"metadata": {"labels": labels}, "spec": spec},
        },
    }


_PLAIN_KEY = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789./-_")


def _scalar(value: object) -> str:
    from imagesmith.doctor.loader.jsonout import dumps

    return dumps(value)  # JSON scalars are YAML scalars: strings double-quoted, true/false, numbers


def _key(key: str) -> str:
    return key if key and all(c in _PLAIN_KEY for c in key) and key[0].isalpha() else _scalar(key)


def _emit(value: object, indent: int, out: list[str]) -> None:
    pad = "  " * indent
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(v, (dict, list)) and v:
                out.append(f"{pad}{_key(k)}:")
                _emit(v, indent + (1 if isinstance(v, dict) else 0), out)
            else:
                out.append(f"{pad}{_key(k)}: {_flow(v)}")
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, (dict, list)) and item:
                nested: list[str] = []
                _emit(item, indent + 1, nested)
                first = nested[0][len(pad) + 2 :]
                out.append(f"{pad}- {first}")
                out.extend(nested[1:])
            else:
                out.append(f"{pad}- {_flow(item)}")


def _flow(value: object) -> str:
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, list):
        return "[]"
    return _scalar(value)


def to_yaml(document: dict[str, object], *, header: str = "") -> str:
    """``document`` as block YAML (a ``---`` document after ``header``'s comment lines)."""
    lines: list[str] = []
    _emit(document, 0, lines)
    return header + "---\n" + "\n".join(lines) + "\n"


def render(
    kind: str,
    *,
    image: str = DEFAULT_IMAGE,
    namespace: str = DEFAULT_NAMESPACE,
    features_dir: str = DEFAULT_FEATURES_DIR,
    interval: str = DEFAULT_INTERVAL,
) -> str:
    """The manifest's YAML text, with the comment block that explains its choices."""
    document = manifest(
        kind, image=image, namespace=namespace, features_dir=features_dir, interval_s=parse_interval(interval)
    )
    path = f"{features_dir.rstrip('/')}/{FILE_NAME}"
    return to_yaml(document, header=HEADER.format(path=path))
