"""The pure core: rows + query -> the cheapest fitting row, alternatives, and why cheaper rows were rejected.

Order (documented, deterministic): price for the chosen market ascending, then cloud, service, region and
instance type by name. So g5g.16xlarge beats the same-priced g5g.metal, and AWS beats Azure at an equal price.
"""

from __future__ import annotations

from bisect import bisect_left

from imagesmith.contract.record import record
from imagesmith.matrix.versions import Capability
from imagesmith.picker.allocatable import offer
from imagesmith.picker.catalog import Catalog
from imagesmith.picker.grammar import Range, Ratio
from imagesmith.picker.model import InstanceRow
from imagesmith.picker.query import Query, _gpu_matches

TYPE_CHECKING = False  # typing costs ~10 ms to import; `imagesmith pick` is timed
if TYPE_CHECKING:
    from typing import Any


@record
class Failure:
    constraint: str  # the flag's name without dashes: cpus, memory, gpus, gpu, gpu_memory, min_cc, ...
    wanted: str
    got: str
    # How far off, relative to what was asked (0.5 = half the GPUs); 1 for a miss that has no size (a
    # GPU model, an architecture). The closest options are those that fail by the least.
    distance: float = 1.0

    def to_json(self) -> dict[str, str]:
        return {"constraint": self.constraint, "wanted": self.wanted, "got": self.got}

    def __str__(self) -> str:
        return f"{self.constraint} {self.wanted}: {self.got}"


@record
class Rejection:
    row: InstanceRow
    failed: tuple[Failure, ...]

    def to_json(self) -> dict[str, Any]:
        return {"row": self.row.to_json(), "failed": [f.to_json() for f in self.failed]}


@record
class Selection:
    choice: InstanceRow | None
    alternatives: tuple[InstanceRow, ...]
    rejected: tuple[Rejection, ...]
    rejected_total: int


_CC_CACHE: dict[str, Capability | None] = {}


def _cc(text: str) -> Capability | None:
    """The catalog row's capability, parsed once per distinct value (the catalog repeats a few dozen)."""
    try:
        return _CC_CACHE[text]
    except KeyError:
        try:
            value: Capability | None = Capability.parse(text) if text else None
        except ValueError:
            value = None
        _CC_CACHE[text] = value
        return value


def _fmt(value: float) -> str:
    return f"{value:g}"


def failures(row: InstanceRow, q: Query) -> list[Failure]:
    """Every constraint the row breaks; empty when it fits."""
    out: list[Failure] = []
    price = row.price_spot if q.spot else row.price_on_demand
    market = "spot" if q.spot else "on-demand"
    if price is None:
        out.append(
            Failure(constraint="price", wanted=f"a published {market} price", got="none in the catalog")
        )
    elif q.max_price is not None and price > q.max_price:
        out.append(
            Failure(constraint="max_price", wanted=f"<= {_fmt(q.max_price)}", got=f"${price:g}/h {market}")
        )
    count = row.gpu_count
    if row.gpu_fractional and not q.allow_fractional:
        out.append(
            Failure(
                constraint="allow_fractional",
                wanted="whole GPUs",
                got=f"{_fmt(count)} of one {row.gpu_model} (pass --allow-fractional)",
            )
        )
    if q.gpus is not None and not q.gpus.contains(count):
        got = _fmt(count)
        low = q.gpus.low if q.gpus.low is not None else 0.0
        if 0 < count < low and not row.gpu_fractional:
            # Too few per machine: say how many of them would make up the request.
            nodes = -(-round(low + 0.01) // int(count))
            got += f" per node ({nodes} nodes give {_fmt(nodes * count)})"
        out.append(Failure(constraint="gpus", wanted=q.gpus.text, got=got, distance=_distance(q.gpus, count)))
    elif q.wants_gpu and count <= 0:
        # --gpu/--gpu-memory/--min-cc/--image ask for a GPU even when --gpus ..1 would admit zero.
        out.append(Failure(constraint="gpus", wanted="at least one GPU", got="0"))
    elif q.gpus is None and not q.wants_gpu and count > 0:
        out.append(
            Failure(constraint="gpus", wanted="0 (no GPU flag given)", got=f"{_fmt(count)} x {row.gpu_model}")
        )
    if count > 0:
        if q.gpu_names and not any(_gpu_matches(row.gpu_model, n) for n in q.gpu_names):
            out.append(Failure(constraint="gpu", wanted=",".join(q.gpu_names), got=row.gpu_model))
        if q.gpu_memory is not None:
            mem = row.gpu_memory_nominal_gb_each
            basis = "nominal GB"
            if q.gpu_memory_basis == "reported" and row.gpu_memory_gib_each is not None:
                mem, basis = row.gpu_memory_gib_each, "reported GiB"
            if mem is None or not q.gpu_memory.contains(mem):
                got = f"{_fmt(mem)} {basis}" if mem is not None else "unknown"
                out.append(
                    Failure(
                        constraint="gpu_memory", wanted=f"{q.gpu_memory.text} ({q.gpu_memory_basis})", got=got
                    )
                )
        cc = _cc(row.compute_capability)
        if q.min_cc is not None and (cc is None or cc < q.min_cc):
            out.append(
                Failure(
                    constraint="min_cc",
                    wanted=str(q.min_cc),
                    got=f"{row.gpu_model} is {row.compute_capability or 'unknown'}",
                )
            )
        if q.image is not None:
            ok, why = (
                q.image.verdicts.get(cc, (False, "unknown compute capability")) if cc else (False, "unknown")
            )
            if not ok:
                out.append(
                    Failure(
                        constraint="image",
                        wanted=q.image.spec,
                        got=f"{row.gpu_model} ({row.compute_capability}): {why}",
                    )
                )
    if q.arch is not None and row.arch != q.arch:
        out.append(Failure(constraint="arch", wanted=q.arch, got=row.arch))
    node = (
        offer(row, q.headroom) if q.fit == "pods" and (q.cpus is not None or q.memory is not None) else None
    )
    if q.cpus is not None:
        out += _size("cpus", q.cpus, row.vcpus, node.cpus if node else None, "vCPUs")
    if isinstance(q.memory, Range):
        out += _size("memory", q.memory, row.memory_gib, node.memory_gib if node else None, "GiB")
    elif isinstance(q.memory, Ratio) and row.memory_gib < q.memory.per_vcpu * row.vcpus - 1e-9:
        out.append(
            Failure(
                constraint="memory",
                wanted=f"{q.memory.text} ({_fmt(q.memory.per_vcpu * row.vcpus)} GiB)",
                got=f"{_fmt(row.memory_gib)} GiB",
            )
        )
    if q.no_burstable and row.burstable:
        out.append(
            Failure(constraint="no_burstable", wanted="full-time vCPUs", got="burstable (CPU credits)")
        )
    return out


def _size(
    constraint: str, wanted: Range, capacity: float, for_pods: float | None, unit: str
) -> list[Failure]:
    """A size request: its floor held to what the node offers pods (when fitting pods), its ceiling to the
    nameplate; the miss is reported with both figures."""
    low_ok = wanted.low is None or (for_pods if for_pods is not None else capacity) >= wanted.low - 1e-9
    high_ok = wanted.high is None or capacity <= wanted.high + 1e-9
    if low_ok and high_ok:
        return []
    got = f"{_fmt(capacity)} {unit}"
    if for_pods is not None:
        got += f", {for_pods:.2f} for pods"
    # The distance is measured on the figure the failing bound was held to.
    measured = for_pods if for_pods is not None and not low_ok else capacity
    return [Failure(constraint=constraint, wanted=wanted.text, got=got, distance=_distance(wanted, measured))]


def _distance(wanted: Range, got: float) -> float:
    """How far ``got`` is outside ``wanted``, as a fraction of the bound it misses."""
    if wanted.low is not None and got < wanted.low:
        return (wanted.low - got) / max(wanted.low, 1e-9)
    if wanted.high is not None and got > wanted.high:
        return (got - wanted.high) / max(wanted.high, 1e-9)
    return 0.0


def in_scope(row: InstanceRow, q: Query) -> bool:
    """Cloud/service/region say where to look; rows elsewhere are not options and are not reported."""
    return (
        row.service in q.services
        and (not q.clouds or row.cloud in q.clouds)
        and (not q.regions or row.region in q.regions)
        and (not q.zones or row.zone in q.zones)
        and (not q.instance_types or row.instance_type in q.instance_types)
    )


def sort_key(row: InstanceRow, spot: bool) -> tuple[float, str, str, str, str, str]:
    price = row.price_spot if spot else row.price_on_demand
    return (
        price if price is not None else float("inf"),
        row.cloud,
        row.service,
        row.region,
        row.zone,
        row.instance_type,
    )


def ordered(catalog: Catalog, spot: bool) -> tuple[InstanceRow, ...]:
    """Rows in tie-break order, computed once per catalog and market."""
    key = ("order", spot)
    if key not in catalog.cache:
        catalog.cache[key] = tuple(sorted(catalog.rows, key=lambda r: sort_key(r, spot)))
    order: tuple[InstanceRow, ...] = catalog.cache[key]
    return order


class _Scope:
    """The rows a scope (market, services, clouds, regions, zones, types) holds, in order, split into GPU and
    CPU machines, with their sort keys for bisecting: built once per scope, so a query walks only the rows of
    its own kind (on a catalog the size of SkyPilot's AWS one, the per-row scope test was most of the time)."""

    __slots__ = ("all", "cpu", "cpu_keys", "gpu", "gpu_keys")

    def __init__(self, rows: list[InstanceRow], spot: bool) -> None:
        self.all = tuple(rows)
        self.gpu = tuple(r for r in rows if r.gpu_count > 0)
        self.cpu = tuple(r for r in rows if r.gpu_count <= 0)
        self.gpu_keys = [sort_key(r, spot) for r in self.gpu]
        self.cpu_keys = [sort_key(r, spot) for r in self.cpu]


_SCOPES_KEPT = 64


def scoped(catalog: Catalog, q: Query) -> _Scope:
    key = ("scope", q.spot, q.services, q.clouds, q.regions, q.zones, q.instance_types)
    found = catalog.cache.get(key)
    if found is None:
        scopes = [k for k in catalog.cache if isinstance(k, tuple) and k[:1] == ("scope",)]
        if len(scopes) >= _SCOPES_KEPT:  # a long-lived process asking about many scopes: start over
            for k in scopes:
                del catalog.cache[k]
        found = catalog.cache[key] = _Scope([r for r in ordered(catalog, q.spot) if in_scope(r, q)], q.spot)
    scope: _Scope = found
    return scope


def _other_gpu(row: InstanceRow, q: Query) -> bool:
    """When the user named a GPU, rows with that GPU are the nearer misses (a V100 failing --image, not a T4)."""
    return bool(q.gpu_names) and not any(_gpu_matches(row.gpu_model, n) for n in q.gpu_names)


def _miss(rejection: Rejection) -> tuple[int, float]:
    """Fewest broken constraints first, then the smallest miss: for 16 H100s the 8-GPU machines come before
    the 1-GPU ones."""
    return len(rejection.failed), sum(f.distance for f in rejection.failed)


def _machine(row: InstanceRow) -> tuple[str, str, str]:
    return (row.cloud, row.service, row.instance_type)


def _distinct(rejections: list[Rejection], want: int) -> list[Rejection]:
    """The first ``want`` rejections of distinct machines (one zone of a type says what all of them would)."""
    out: list[Rejection] = []
    seen: set[tuple[str, str, str]] = set()
    for r in rejections:
        if len(out) >= want:
            break
        if _machine(r.row) not in seen:
            seen.add(_machine(r.row))
            out.append(r)
    return out


def select(catalog: Catalog, q: Query) -> Selection:
    choice: InstanceRow | None = None
    alternatives: list[InstanceRow] = []
    rejected: list[Rejection] = []
    rejected_rows = 0
    scope = scoped(catalog, q)
    # A GPU question walks the GPU machines, a CPU question the CPU ones; rows of the other kind certainly fail
    # and are near misses only in name: they are looked at only if too few real near misses fill the list.
    if q.wants_gpu:
        rows, other, other_keys = scope.gpu, scope.cpu, scope.cpu_keys
    elif q.gpus is None:
        rows, other, other_keys = scope.cpu, scope.gpu, scope.gpu_keys
    else:
        rows, other, other_keys = scope.all, (), []
    shown: set[tuple[str, str, str]] = set()
    failed_machines: set[tuple[str, str, str]] = set()
    for row in rows:
        machine = (row.cloud, row.service, row.instance_type)
        if machine in failed_machines:
            # The same machine in a pricier region or zone fails the same way (every constraint but the price
            # is the machine's, and the price only grows along the order): counted, not worked out again.
            if choice is None:
                rejected_rows += 1
            continue
        failed = failures(row, q)
        if failed:
            failed_machines.add(machine)
            if choice is None:
                rejected_rows += 1
                rejected.append(Rejection(row=row, failed=tuple(failed)))
            continue
        if choice is None:
            choice = row
            shown.add(machine)
        elif len(alternatives) >= q.top:
            break
        elif machine not in shown:
            # Alternatives are other machines: the same type in its other zones and regions is not news.
            shown.add(machine)
            alternatives.append(row)
    want = max(q.top, 1)
    # The other kind's rows that were cheaper than the choice (all of them without one).
    cheaper = bisect_left(other_keys, sort_key(choice, q.spot)) if choice is not None else len(other)

    # With a choice, the cheaper rows it beat are listed cheapest first (why they lost); without one, the
    # options that fail by the least come first (what to change).
    def order(r: Rejection) -> tuple[bool, int, float, tuple[float, str, str, str, str, str]]:
        broken, miss = _miss(r)
        return (_other_gpu(r.row, q), broken, miss if choice is None else 0.0, sort_key(r.row, q.spot))

    closest = _distinct(sorted(rejected, key=order), want)
    if len(closest) < want and cheaper:
        firsts: dict[tuple[str, str, str], InstanceRow] = {}
        for r in other[:cheaper]:
            firsts.setdefault((r.cloud, r.service, r.instance_type), r)
        extra = [Rejection(row=r, failed=tuple(failures(r, q))) for r in firsts.values()]
        closest += _distinct(
            sorted(extra, key=lambda r: (*_miss(r), sort_key(r.row, q.spot))), want - len(closest)
        )
    return Selection(
        choice=choice,
        alternatives=tuple(alternatives),
        rejected=tuple(closest),
        rejected_total=rejected_rows + cheaper,
    )
