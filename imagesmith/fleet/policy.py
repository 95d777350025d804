"""`imagesmith fleet policy`: the ``fleet`` section of ``imagesmith.yaml`` from the nodes that really exist, and
``--check`` of a policy's section against them, so the curated set is planned for the fleet the team runs.

A pool is every GPU node with the same driver and GPU model (GFD's labels, named the matrix's way); its name is the
nodes' instance type when they share one, else the GPU's, with the driver branch.
"""

from __future__ import annotations

from imagesmith.contract.record import record
from imagesmith.fleet.gfd import INSTANCE_TYPE, NodeFacts
from imagesmith.fleet.verdict import gpu_of
from imagesmith.matrix.knowledge import Knowledge
from imagesmith.matrix.versions import NvVersion

TYPE_CHECKING = False  # mypy treats this name as True
if TYPE_CHECKING:
    from collections.abc import Iterable

    from imagesmith.images.policy import Policy


@record
class Pool:
    name: str
    driver: NvVersion
    gpu: str  # the matrix's name
    count: int
    nodes: tuple[str, ...]


@record
class Derived:
    pools: tuple[Pool, ...]
    unjudged: tuple[str, ...]  # GPU nodes whose driver or GPU the labels do not tell

    def to_json(self) -> dict[str, object]:
        return {
            "schema": 1,
            "fleet": [
                {
                    "name": p.name,
                    "driver": str(p.driver),
                    "gpu": p.gpu,
                    "count": p.count,
                    "nodes": list(p.nodes),
                }
                for p in self.pools
            ],
            "unjudged": list(self.unjudged),
        }


def _slug(text: str) -> str:
    out = "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")
    while "--" in out:
        out = out.replace("--", "-")
    return out


def derive(kb: Knowledge, nodes: Iterable[NodeFacts]) -> Derived:
    groups: dict[tuple[NvVersion, str], list[NodeFacts]] = {}
    unjudged = []
    for node in nodes:
        if not node.has_gpu:
            continue
        found = gpu_of(kb, node)
        if node.driver is None or found is None:
            unjudged.append(node.name)
            continue
        groups.setdefault((node.driver, found.name), []).append(node)
    pools = []
    used: set[str] = set()
    for (driver, gpu), members in sorted(groups.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        types = {n.labels.get(INSTANCE_TYPE) for n in members}
        shared = types.pop() if len(types) == 1 else None
        base = _slug(shared or gpu)
        name = f"{base}-r{driver.major}"
        while name in used:
            name += "-b"
        used.add(name)
        pools.append(
            Pool(
                name=name,
                driver=driver,
                gpu=gpu,
                count=len(members),
                nodes=tuple(sorted(n.name for n in members)),
            )
        )
    return Derived(pools=tuple(pools), unjudged=tuple(sorted(unjudged)))


def render(derived: Derived) -> str:
    lines = [
        "# The fleet as the cluster reports it (GPU Feature Discovery labels), for imagesmith.yaml:",
        "fleet:",
    ]
    for p in derived.pools:
        lines.append(f'  - {{name: {p.name}, driver: "{p.driver}", gpu: "{p.gpu}", count: {p.count}}}')
    if derived.unjudged:
        lines.append(f"# GPU nodes without driver/GPU labels (not listed): {', '.join(derived.unjudged)}")
    return "\n".join(lines)


@record
class Drift:
    kind: str  # missing (in the cluster, not the policy) | driver | stale (in the policy, not the cluster) | count
    message: str


def check(policy: Policy, derived: Derived) -> tuple[Drift, ...]:
    """Where the policy's fleet and the cluster's differ; empty when the curated set covers what runs.

    A pool whose GPU the policy plans for on another driver is one ``driver`` difference (the images planned for
    that driver may not run on this one), not a missing pool plus a stale entry.
    """
    planned = {(n.driver, n.gpu.name): n for n in policy.fleet}
    out = []
    unmatched = []
    for p in derived.pools:
        entry = planned.pop((p.driver, p.gpu), None)
        if entry is None:
            unmatched.append(p)
        elif entry.count != p.count and entry.count != 1:
            out.append(
                Drift(
                    kind="count",
                    message=f"{entry.name}: the policy says {entry.count} nodes, the cluster runs {p.count}",
                )
            )
    for p in unmatched:
        nodes = f"{', '.join(p.nodes[:3])}{', ...' if len(p.nodes) > 3 else ''}"
        same_gpu = next(((k, e) for k, e in planned.items() if k[1] == p.gpu), None)
        if same_gpu is not None:
            del planned[same_gpu[0]]
            entry = same_gpu[1]
            out.append(
                Drift(
                    kind="driver",
                    message=f"{entry.name} ({entry.where}) plans {p.gpu} on driver {entry.driver}; the cluster runs "
                    f'{p.driver} on {p.count} node(s) ({nodes}): set driver: "{p.driver}"',
                )
            )
            continue
        out.append(
            Drift(
                kind="missing",
                message=f"{p.count} node(s) with {p.gpu} on driver {p.driver} ({nodes}) are not in the policy's fleet: "
                f'add {{name: {p.name}, driver: "{p.driver}", gpu: "{p.gpu}"}}',
            )
        )
    for (driver, gpu), entry in sorted(planned.items(), key=lambda kv: kv[1].name):
        out.append(
            Drift(
                kind="stale",
                message=f"{entry.name} ({gpu}, driver {driver}) is in the policy ({entry.where}) but no node runs it",
            )
        )
    return tuple(out)


def drift_json(drift: tuple[Drift, ...]) -> dict[str, object]:
    return {"schema": 1, "drift": [{"kind": d.kind, "message": d.message} for d in drift]}


def drift_text(drift: tuple[Drift, ...], policy_file: str) -> str:
    return (
        "\n".join(f"{d.kind}: {d.message}" for d in drift)
        or f"{policy_file}: the policy's fleet matches the cluster"
    )
