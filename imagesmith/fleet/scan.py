"""`imagesmith fleet scan` and `fleet upgrade`: every workload's image judged on the nodes it may land on.

Pure over its inputs (nodes, pods, and a function from an image reference to its labels); the CLI reads them
from the API or files and the registry. Each image is resolved once and judged once per group of identical nodes
(same driver, GPU and capability), so a fleet of thousands of nodes in a few pools costs a few verdicts.
"""

from __future__ import annotations

from imagesmith.contract.labels import ImageLabels
from imagesmith.contract.record import record
from imagesmith.fleet.gfd import NodeFacts
from imagesmith.fleet.verdict import image_on_node, unreadable
from imagesmith.fleet.workloads import Workload, may_land
from imagesmith.matrix.knowledge import Knowledge
from imagesmith.matrix.rules import FAILS, Verdict

TYPE_CHECKING = False  # mypy treats this name as True
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Any

    # ref -> its labels, or the one-line reason they could not be read
    Resolver = Callable[[str], ImageLabels | str]

SCHEMA = 1


@record
class NodeVerdict:
    node: str
    verdict: str
    codes: tuple[str, ...]
    messages: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.node, "verdict": self.verdict, "codes": list(self.codes)}


@record
class GroupVerdict:
    """The verdict of one image on a group of nodes that are the same to the scheduler and to the matrix."""

    nodes: tuple[str, ...]
    verdict: str
    codes: tuple[str, ...]
    messages: tuple[str, ...]
    what: str  # the nodes, in words (GPU, capability, driver)


@record
class WorkloadReport:
    workload: Workload
    groups: tuple[GroupVerdict, ...]

    @property
    def nodes(self) -> tuple[NodeVerdict, ...]:
        return tuple(
            NodeVerdict(node=n, verdict=g.verdict, codes=g.codes, messages=g.messages)
            for g in self.groups
            for n in g.nodes
        )

    def to_json(self, *, with_nodes: bool = True) -> dict[str, Any]:
        w = self.workload
        out: dict[str, Any] = {
            "namespace": w.namespace,
            "name": w.name,
            "owner": w.owner,
            "image": w.image,
            "pods": len(w.pods),
        }
        if with_nodes:
            out["nodes"] = [
                {"name": n, "verdict": g.verdict, "codes": list(g.codes)}
                for g in self.groups
                for n in g.nodes
            ]
        return out


@record
class PodVerdict:
    """A running pod whose image fails on its node (at risk now), or would after a change (breaks), or no longer
    would (fixed): the codes and messages say why."""

    namespace: str
    pod: str
    node: str
    image: str
    codes: tuple[str, ...]
    messages: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "pod": self.pod,
            "node": self.node,
            "image": self.image,
            "codes": list(self.codes),
        }


@record
class ScanReport:
    workloads: tuple[WorkloadReport, ...]
    at_risk: tuple[PodVerdict, ...]

    def write_json(self, write: Callable[[str], object]) -> None:
        """``to_json()`` as indented JSON text, written piece by piece: a fleet of 5,000 nodes and 50,000 pods
        lists millions of (workload, node) verdicts, and a dict per verdict plus one string of the whole
        document cost minutes and gigabytes; here a group's fields are encoded once for all its nodes."""
        import json

        write(f'{{\n "schema": {SCHEMA},\n "workloads": [')
        for i, w in enumerate(self.workloads):
            head = json.dumps(w.to_json(with_nodes=False))[:-1]
            write(("," if i else "") + "\n  " + head + ', "nodes": [')
            first = True
            for g in w.groups:
                tail = f', "verdict": {json.dumps(g.verdict)}, "codes": {json.dumps(list(g.codes))}}}'
                for n in g.nodes:
                    write(("" if first else ", ") + '{"name": ' + json.dumps(n) + tail)
                    first = False
            write("]}")
        write('\n ],\n "at_risk": [')
        for i, a in enumerate(self.at_risk):
            write(("," if i else "") + "\n  " + json.dumps(a.to_json()))
        write("\n ]\n}\n")

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "workloads": [w.to_json() for w in self.workloads],
            "at_risk": [a.to_json() for a in self.at_risk],
        }


class Judge:
    """Verdicts of images on node groups, each worked out once."""

    def __init__(self, kb: Knowledge, resolve: Resolver) -> None:
        self.kb = kb
        self.resolve = resolve
        self._labels: dict[str, ImageLabels | str] = {}
        self._verdicts: dict[tuple[str, tuple[str, str, str], bool], Verdict] = {}

    def labels(self, image: str) -> ImageLabels | str:
        if image not in self._labels:
            self._labels[image] = self.resolve(image)
        return self._labels[image]

    def verdict(self, image: str, node: NodeFacts) -> Verdict:
        key = (image, node.group, node.has_gpu)
        if key not in self._verdicts:
            promised = self.labels(image)
            self._verdicts[key] = (
                unreadable(image, promised)
                if isinstance(promised, str)
                else image_on_node(self.kb, promised, node)
            )
        return self._verdicts[key]

    def on(self, image: str, node: NodeFacts) -> NodeVerdict:
        v = self.verdict(image, node)
        shown = tuple(r for r in v.reasons if r.severity != "info")
        return NodeVerdict(
            node=node.name,
            verdict=v.verdict,
            codes=tuple(r.code for r in shown),
            messages=tuple(r.message for r in shown),
        )


IDENTITY_LABELS = ("kubernetes.io/hostname",)
PLACEMENTS_KEPT = 4096


class Fleet:
    """The nodes, in classes the scheduler cannot tell apart (same labels but the hostname, same taints, GPUs or
    not): a workload's placement is worked out once per class, and once per distinct scheduling spec, so a
    fleet of 5,000 nodes in a few pools and 50,000 pods in a few thousand workloads costs thousands of rule
    evaluations, not hundreds of millions."""

    def __init__(self, nodes: Iterable[NodeFacts]) -> None:
        self.by_name = {n.name: n for n in nodes}
        classes: dict[object, list[NodeFacts]] = {}
        for n in self.by_name.values():
            labels = tuple(sorted((k, v) for k, v in n.labels.items() if k not in IDENTITY_LABELS))
            classes.setdefault((labels, n.taints, n.gpu_count > 0), []).append(n)
        self.classes = [(members[0], tuple(m.name for m in members)) for members in classes.values()]
        self._placements: dict[str, list[tuple[NodeFacts, tuple[str, ...]]]] = {}

    def placement(self, spec: dict[str, Any]) -> list[tuple[NodeFacts, tuple[str, ...]]]:
        """(a representative node, the names of its class) for every class the spec may land on."""
        import json

        from imagesmith.fleet.workloads import wants_gpu

        affinity = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
            "requiredDuringSchedulingIgnoredDuringExecution"
        )
        key = json.dumps(
            [spec.get("nodeSelector"), affinity, spec.get("tolerations"), wants_gpu(spec)], sort_keys=True
        )
        found = self._placements.get(key)
        if found is None:
            if len(self._placements) >= PLACEMENTS_KEPT:  # a webhook sees endless distinct specs: start over
                self._placements.clear()
            if any(k in key for k in (*IDENTITY_LABELS, "matchFields")):
                # A spec that names nodes one by one: judged node by node.
                found = [(n, (n.name,)) for n in self.by_name.values() if may_land(spec, n)]
            else:
                found = [(rep, names) for rep, names in self.classes if may_land(spec, rep)]
            self._placements[key] = found
        return found


def scan(nodes: Iterable[NodeFacts] | Fleet, workloads: Iterable[Workload], judge: Judge) -> ScanReport:
    fleet = nodes if isinstance(nodes, Fleet) else Fleet(nodes)
    reports = []
    risks = []
    for w in workloads:
        groups = []
        for rep, names in fleet.placement(w.spec):
            v = judge.on(w.image, rep)
            groups.append(
                GroupVerdict(
                    nodes=names, verdict=v.verdict, codes=v.codes, messages=v.messages, what=rep.describe()
                )
            )
        reports.append(WorkloadReport(workload=w, groups=tuple(groups)))
        for pod in w.pods:
            node = fleet.by_name.get(pod.node or "")
            if node is None:
                continue
            v = judge.on(w.image, node)
            if v.verdict == FAILS:
                risks.append(
                    PodVerdict(
                        namespace=pod.namespace,
                        pod=pod.name,
                        node=node.name,
                        image=w.image,
                        codes=v.codes,
                        messages=v.messages,
                    )
                )
    return ScanReport(workloads=tuple(reports), at_risk=tuple(risks))


@record
class UpgradeReport:
    selected: tuple[str, ...]  # node names the change applies to
    breaks: tuple[PodVerdict, ...]
    fixed: tuple[PodVerdict, ...]
    unchanged: int

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "nodes": list(self.selected),
            "breaks": [c.to_json() for c in self.breaks],
            "fixed": [c.to_json() for c in self.fixed],
            "unchanged": self.unchanged,
        }


def upgrade(
    nodes: Iterable[NodeFacts],
    workloads: Iterable[Workload],
    judge: Judge,
    *,
    selected: Callable[[NodeFacts], bool],
    change: Callable[[NodeFacts], NodeFacts],
) -> UpgradeReport:
    """The pods running on the selected nodes, judged before and after the change."""
    by_name = {n.name: n for n in nodes}
    chosen = {name: change(n) for name, n in by_name.items() if selected(n)}
    breaks: list[PodVerdict] = []
    fixed: list[PodVerdict] = []
    unchanged = 0
    for w in workloads:
        for pod in w.pods:
            if pod.node not in chosen:
                continue
            before = judge.on(w.image, by_name[pod.node])
            after = judge.on(w.image, chosen[pod.node])
            if (before.verdict == FAILS) == (after.verdict == FAILS):
                unchanged += 1
                continue
            why = after if after.verdict == FAILS else before  # the failure the change brings, or removes
            (breaks if after.verdict == FAILS else fixed).append(
                PodVerdict(
                    namespace=pod.namespace,
                    pod=pod.name,
                    node=pod.node,
                    image=w.image,
                    codes=why.codes,
                    messages=why.messages,
                )
            )
    return UpgradeReport(
        selected=tuple(sorted(chosen)), breaks=tuple(breaks), fixed=tuple(fixed), unchanged=unchanged
    )


def selector(text: str) -> Callable[[NodeFacts], bool]:
    """``key=value[,key2=value2]`` or ``key!=value`` or ``key`` (exists), as `kubectl -l` reads equality selectors."""
    from imagesmith.errors import UsageError

    terms: list[tuple[str, str, str | None]] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            raise UsageError("an empty term", where=f"--selector {text!r}")
        if "!=" in part:
            key, _, value = part.partition("!=")
            terms.append(("!=", key.strip(), value.strip()))
        elif "=" in part:
            key, _, value = part.partition("=")
            terms.append(("=", key.strip().rstrip("="), value.strip().lstrip("=")))
        else:
            terms.append(("exists", part, None))
        if not terms[-1][1]:
            raise UsageError("a term without a label key", where=f"--selector {text!r}")

    def match(node: NodeFacts) -> bool:
        for op, key, value in terms:
            have = node.labels.get(key)
            if op == "=" and have != value:
                return False
            if op == "!=" and have == value:
                return False
            if op == "exists" and have is None:
                return False
        return True

    return match


@record
class Admission:
    """The decision on one pod spec: allowed, and why not (or what to warn about)."""

    allowed: bool
    message: str  # empty when allowed without remarks
    warnings: tuple[str, ...]
    images: tuple[str, ...]


def admit(spec: dict[str, Any], nodes: Iterable[NodeFacts] | Fleet, judge: Judge) -> Admission:
    """Would every image of this pod spec run on at least one node its selector, affinity and tolerations allow?

    An image that runs nowhere it may land is refused (naming the image, the nodes and the reason codes); an
    image whose labels cannot be read, or a spec no node admits, is allowed with a warning: the webhook judges
    compatibility, the scheduler judges placement.
    """
    from imagesmith.fleet.workloads import images_of

    fleet = nodes if isinstance(nodes, Fleet) else Fleet(nodes)
    placement = fleet.placement(spec)
    images = tuple(images_of(spec))
    refusals: list[str] = []
    warnings: list[str] = []
    if not placement:
        warnings.append("no node matches the pod's node selector, affinity and tolerations; not judged")
        return Admission(allowed=True, message="", warnings=tuple(warnings), images=images)
    for image in images:
        # One verdict per class of identical nodes; the names are only spelled out when refusing.
        verdicts = [(judge.on(image, rep), names) for rep, names in placement]
        if any(v.verdict not in (FAILS, "unknown") for v, _ in verdicts):
            continue
        if all(v.verdict == "unknown" for v, _ in verdicts):
            first = verdicts[0][0]
            warnings.append(
                f"{image}: labels unreadable, not judged ({first.messages[0] if first.messages else ''})"
            )
            continue
        every = [n for _, names in verdicts for n in names]
        shown = ", ".join(every[:5]) + (f" and {len(every) - 5} more" if len(every) > 5 else "")
        codes = ", ".join(dict.fromkeys(c for v, _ in verdicts for c in v.codes))
        first_message = next((m for v, _ in verdicts for m in v.messages), "")
        refusals.append(f"{image} cannot run on any node it may land on ({shown}): {codes}; {first_message}")
    if refusals:
        return Admission(allowed=False, message="; ".join(refusals), warnings=tuple(warnings), images=images)
    return Admission(allowed=True, message="", warnings=tuple(warnings), images=images)
