"""Pods as workloads, and where the scheduler may put them.

A workload is a pod's controller (Deployment, StatefulSet, DaemonSet, Job, CronJob; a bare pod is its own) and
one container image of it: the unit a platform engineer fixes. Placement follows the scheduler's hard rules
only: ``nodeSelector``, ``requiredDuringSchedulingIgnoredDuringExecution`` node affinity (terms ORed, expressions
ANDed; In, NotIn, Exists, DoesNotExist, Gt, Lt; ``matchFields`` on ``metadata.name``), NoSchedule/NoExecute taints
without a matching toleration, and an ``nvidia.com/gpu`` request needing a node that offers GPUs. Preferences and
resource fit are not modelled (a full node is still a node the image must run on).
"""

from __future__ import annotations

from imagesmith.contract.record import record
from imagesmith.fleet.gfd import GPU_RESOURCE, NodeFacts, Taint

TYPE_CHECKING = False  # mypy treats this name as True
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any

TEMPLATE_HASH = "pod-template-hash"


@record
class PodRef:
    namespace: str
    name: str
    node: str | None  # spec.nodeName: where it runs now (None: pending)


@record
class Workload:
    namespace: str
    name: str
    owner: str  # Deployment, StatefulSet, DaemonSet, Job, CronJob, ReplicaSet, Pod, ...
    image: str
    spec: dict[str, Any]  # the pod spec the scheduler reads (of one pod: a controller's pods share it)
    pods: tuple[PodRef, ...]


def owner_of(pod: dict[str, Any]) -> tuple[str, str]:
    """(kind, name) of the pod's controller; a ReplicaSet made by a Deployment is the Deployment."""
    meta = pod.get("metadata") or {}
    refs = meta.get("ownerReferences") or ()
    ref = next((r for r in refs if r.get("controller")), refs[0] if refs else None)
    if ref is None:
        return "Pod", str(meta.get("name", ""))
    kind, name = str(ref.get("kind", "")), str(ref.get("name", ""))
    template_hash = (meta.get("labels") or {}).get(TEMPLATE_HASH)
    if kind == "ReplicaSet" and template_hash and name.endswith("-" + template_hash):
        return "Deployment", name[: -len(template_hash) - 1]
    return kind, name


def images_of(spec: dict[str, Any]) -> list[str]:
    """The images of the containers that run the workload (init containers run too, before them)."""
    out = []
    for key in ("initContainers", "containers"):
        for c in spec.get(key) or ():
            image = c.get("image")
            if image and image not in out:
                out.append(str(image))
    return out


def workloads(pods: Iterable[dict[str, Any]]) -> list[Workload]:
    grouped: dict[tuple[str, str, str, str], tuple[dict[str, Any], list[PodRef]]] = {}
    for pod in pods:
        meta = pod.get("metadata") or {}
        spec = pod.get("spec") or {}
        namespace = str(meta.get("namespace", "default"))
        kind, name = owner_of(pod)
        ref = PodRef(namespace=namespace, name=str(meta.get("name", "")), node=spec.get("nodeName"))
        for image in images_of(spec):
            entry = grouped.setdefault((namespace, kind, name, image), (spec, []))
            entry[1].append(ref)
    return [
        Workload(namespace=ns, name=name, owner=kind, image=image, spec=spec, pods=tuple(refs))
        for (ns, kind, name, image), (spec, refs) in sorted(grouped.items())
    ]


def wants_gpu(spec: dict[str, Any]) -> bool:
    for c in [*(spec.get("containers") or ()), *(spec.get("initContainers") or ())]:
        res = c.get("resources") or {}
        for part in ("limits", "requests"):
            value = str((res.get(part) or {}).get(GPU_RESOURCE, "0")).strip()
            if value not in ("", "0"):
                return True
    return False


def _number(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def _expression(expr: dict[str, Any], labels: dict[str, str]) -> bool:
    key, op = str(expr.get("key", "")), str(expr.get("operator", ""))
    values = [str(v) for v in expr.get("values") or ()]
    have = labels.get(key)
    if op == "In":
        return have is not None and have in values
    if op == "NotIn":
        return have is None or have not in values
    if op == "Exists":
        return have is not None
    if op == "DoesNotExist":
        return have is None
    if op in ("Gt", "Lt") and have is not None and len(values) == 1:
        left, right = _number(have), _number(values[0])
        if left is None or right is None:
            return False
        return left > right if op == "Gt" else left < right
    return False  # an unknown operator matches nothing (the API server would have refused it)


def _term(term: dict[str, Any], node: NodeFacts) -> bool:
    fields = {"metadata.name": node.name}
    return all(_expression(e, node.labels) for e in term.get("matchExpressions") or ()) and all(
        _expression(e, fields) for e in term.get("matchFields") or ()
    )


def _tolerated(taint: Taint, tolerations: list[dict[str, Any]]) -> bool:
    for t in tolerations:
        if t.get("effect") and t.get("effect") != taint.effect:
            continue
        op = t.get("operator", "Equal")
        if not t.get("key") and op == "Exists":
            return True
        if t.get("key") == taint.key and (op == "Exists" or str(t.get("value", "")) == taint.value):
            return True
    return False


def may_land(spec: dict[str, Any], node: NodeFacts) -> bool:
    """Whether the scheduler's hard rules allow this pod spec on this node."""
    selector = spec.get("nodeSelector") or {}
    if any(node.labels.get(k) != str(v) for k, v in selector.items()):
        return False
    required = (
        ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
            "requiredDuringSchedulingIgnoredDuringExecution"
        )
        or {}
    ).get("nodeSelectorTerms")
    if required and not any(_term(t, node) for t in required):
        return False
    tolerations = list(spec.get("tolerations") or ())
    if any(t.effect in ("NoSchedule", "NoExecute") and not _tolerated(t, tolerations) for t in node.taints):
        return False
    return not (wants_gpu(spec) and node.gpu_count <= 0)


def pod_spec_of(obj: dict[str, Any]) -> tuple[dict[str, Any], str] | None:
    """The pod spec in a Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, Job or CronJob, and its kind."""
    kind = str(obj.get("kind", ""))
    spec = obj.get("spec") or {}
    if kind == "Pod":
        return spec, kind
    if kind == "CronJob":
        spec = ((spec.get("jobTemplate") or {}).get("spec")) or {}
    template = spec.get("template") or {}
    inner = template.get("spec")
    return (inner, kind) if isinstance(inner, dict) else None
