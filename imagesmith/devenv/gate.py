"""The gate before paying: does the dev image run on the remote target it is about to start on?

The dev image's promises (``io.imagesmith.cuda``, ``min-driver``, ``full-driver``, ``sm``, read through
``imagesmith.contract.labels.ImageLabels``) are held to the target with the fleet's own verdict
(``imagesmith.fleet.verdict.image_on_node``: the matrix's rules, the same reason codes as ``imagesmith fleet``
and ``matrix check``). No compatibility rule is written here; the gate only says what the target is:

* **a picked instance** (``--instance TYPE --cloud C``): its GPU and compute capability from the picker's catalog
  row, and the driver its provider image ships (``data/provider_drivers.toml``: sourced rows, each with its
  confidence). The instance becomes one GFD-labelled node (``imagesmith.fleet.gfd.node_facts``) judged at every
  driver the data allows (a range or a bare branch has two ends): pass or refuse only when they agree, else
  "unknown". A provider whose driver the data does not know (GKE's managed driver, SkyPilot's AWS image) is
  "unknown" with that reason, never a pass.
* **a node pool** (``--nodes FILE -l label=value``): the selected nodes' GFD labels, as ``imagesmith fleet`` reads
  them. Refused when the image fails on every selected node (the workspace would stay Pending behind its GFD
  affinity, or crash where there is none); failing nodes among good ones are a caveat.

A refusal names the reason codes and the nearest fix: a curated image of the plan that runs there (same
framework first), a provider image that ships a new enough driver, or another instance from the picker
(``imagesmith.picker.pick`` with the dev image's build as ``--image``).
"""

from __future__ import annotations

import time
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

from imagesmith.contract import nodelabels
from imagesmith.contract.labels import ImageLabels
from imagesmith.contract.record import field, record
from imagesmith.errors import EnvironmentProblem, ImagesmithError, NegativeAnswer, UnknownName, UsageError
from imagesmith.matrix.codes import Code

DATA = Path(__file__).resolve().parent / "data" / "provider_drivers.toml"
TARGETS = ("k8s", "sky", "vm")
PASS, REFUSE, UNKNOWN = "pass", "refuse", "unknown"
# Codes a different GPU (another instance) can fix; the driver codes need another provider image or image.
KERNEL_CODES = frozenset(
    {Code.NO_KERNEL_IMAGE, Code.PTX_JIT_UNSUPPORTED, Code.GPU_UNSUPPORTED_BY_DRIVER, Code.CPU_ONLY_BUILD}
)


class GateRefused(NegativeAnswer):
    """The dev image fails on the target (exit 1): the reason codes and the nearest fix, in one line."""


class GateUnknown(EnvironmentProblem):
    """The target's facts are not known well enough to judge (exit 3): say which, and how to learn them."""


# ---- the provider images' drivers (sourced data) -----------------------------------------------------------


@record
class ProviderImage:
    id: str
    cloud: str
    target: str
    provider: str
    image: str
    driver: str  # as the source states it: a version, a range, a branch, or "not found"
    judge: tuple[str, ...]  # the versions the gate judges at; () = unknown
    date: str
    source: str
    confidence: str
    kind: str
    default: bool = False
    gpus: tuple[str, ...] = ()
    not_gpus: tuple[str, ...] = ()
    cuda: str = ""

    def serves(self, gpu_model: str) -> bool:
        name = gpu_model.strip().lower()
        if self.gpus and name not in {g.lower() for g in self.gpus}:
            return False
        return name not in {g.lower() for g in self.not_gpus}

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "provider": self.provider,
            "image": self.image,
            "driver": self.driver,
            "date": self.date,
            "source": self.source,
            "confidence": self.confidence,
        }


@cache
def provider_images(path: Path = DATA) -> tuple[ProviderImage, ...]:
    with path.open("rb") as handle:
        rows = tomllib.load(handle)["image"]
    out = []
    for row in rows:
        values = dict(row)
        for key in ("judge", "gpus", "not_gpus"):
            values[key] = tuple(values.get(key, ()))
        out.append(ProviderImage(**values))
    return tuple(out)


def provider_image(image_id: str) -> ProviderImage:
    rows = {row.id: row for row in provider_images()}
    if image_id in rows:
        return rows[image_id]
    import difflib

    raise UnknownName(
        "provider image",
        image_id,
        difflib.get_close_matches(image_id, list(rows), n=3, cutoff=0.3) or sorted(rows)[:3],
        where="--provider-image",
    )


def default_provider_image(target: str, cloud: str, gpu_model: str) -> ProviderImage | None:
    """The image a ``target`` (k8s: the managed node image; sky: SkyPilot's default) on ``cloud`` runs for a GPU."""
    for row in provider_images():
        if row.default and row.target == target and row.cloud == cloud and row.serves(gpu_model):
            return row
    return None


# ---- targets -----------------------------------------------------------------------------------------------


@record
class InstanceTarget:
    """One picked instance type and the provider image it boots."""

    instance_type: str
    cloud: str
    gpu_model: str
    gpu_count: float
    compute_capability: str
    provider_image: ProviderImage | None
    target: str = "k8s"

    def describe(self) -> str:
        gpu = (
            f"{self.gpu_count:g}x {self.gpu_model} (cc {self.compute_capability})"
            if self.gpu_model
            else "no GPU"
        )
        image = (
            f"{self.provider_image.id}, driver {self.provider_image.driver}"
            if self.provider_image
            else "no image data"
        )
        return f"{self.cloud} {self.instance_type} ({gpu}; {image})"


@record
class PoolTarget:
    """The nodes of a ``kubectl get nodes -o json`` file that a selector picks, and the rest of the file."""

    selector: str
    nodes: tuple[Any, ...]  # NodeFacts
    others: tuple[Any, ...] = ()

    def describe(self) -> str:
        return f"node pool -l {self.selector} ({len(self.nodes)} node(s))"


Target = InstanceTarget | PoolTarget


def instance_target(
    instance_type: str, cloud: str, *, target: str = "k8s", provider_image_id: str | None = None
) -> InstanceTarget:
    """The instance as the picker's catalog knows it, with the provider image ``target`` boots on ``cloud``."""
    from imagesmith.picker import catalog

    if target not in TARGETS:
        raise UsageError(f"unknown target {target!r} (one of {', '.join(TARGETS)})", where="--target")
    rows = [r for r in catalog.load().rows if r.instance_type == instance_type and r.cloud == cloud]
    if not rows:
        import difflib

        names = sorted({r.instance_type for r in catalog.load().rows if r.cloud == cloud})
        raise UnknownName(
            f"{cloud} instance type",
            instance_type,
            difflib.get_close_matches(instance_type, names, n=3),
            where="--instance",
        )
    row = rows[0]
    image = (
        provider_image(provider_image_id)
        if provider_image_id
        else default_provider_image(target, cloud, row.gpu_model)
    )
    return InstanceTarget(
        instance_type=instance_type,
        cloud=cloud,
        gpu_model=row.gpu_model,
        gpu_count=row.gpu_count,
        compute_capability=row.compute_capability,
        provider_image=image,
        target=target,
    )


def pool_target(nodes_file: str, selector: str) -> PoolTarget:
    from imagesmith.fleet.cluster import read_file
    from imagesmith.fleet.gfd import nodes_of
    from imagesmith.fleet.scan import selector as parse_selector

    nodes = nodes_of(read_file(nodes_file, "Node"))
    match = parse_selector(selector)
    chosen = tuple(n for n in nodes if match(n))
    if not chosen:
        raise UsageError(
            "no node matches", where=f"-l {selector!r}", hint=f"{len(nodes)} node(s) in {nodes_file}"
        )
    return PoolTarget(selector=selector, nodes=chosen, others=tuple(n for n in nodes if not match(n)))


# ---- the answer --------------------------------------------------------------------------------------------


@record
class Judged:
    """The fleet's verdict on one node (a real one, or the instance at one driver version)."""

    node: str
    verdict: str  # works | works-with-caveats | fails
    codes: tuple[str, ...]
    messages: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "verdict": self.verdict,
            "codes": list(self.codes),
            "messages": list(self.messages),
        }


@record
class GateAnswer:
    answer: str  # pass | refuse | unknown
    image: str
    target: str
    codes: tuple[str, ...]
    reasons: tuple[str, ...]
    fixes: tuple[str, ...] = ()
    judged: tuple[Judged, ...] = ()
    provider_image: ProviderImage | None = None
    seconds: float = 0.0
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def passed(self) -> bool:
        return self.answer == PASS

    def one_line(self) -> str:
        codes = f" [{', '.join(self.codes)}]" if self.codes else ""
        why = f": {self.reasons[0]}" if self.reasons else ""
        fix = f"; fix: {self.fixes[0]}" if self.fixes else ""
        return f"{self.answer}: {self.image} on {self.target}{codes}{why}{fix}"

    def text(self) -> str:
        lines = [self.one_line()]
        lines += [f"  reason: {r}" for r in self.reasons[1:]]
        lines += [f"  fix: {f}" for f in self.fixes[1:]]
        if self.provider_image is not None:
            p = self.provider_image
            lines.append(
                f"  driver data: {p.id}: {p.driver} ({p.date}; {p.source}; confidence {p.confidence})"
            )
        lines += [f"  note: {n}" for n in self.notes]
        lines.append(f"  answered in {self.seconds * 1000:.1f} ms")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": 1,
            "answer": self.answer,
            "image": self.image,
            "target": self.target,
            "codes": list(self.codes),
            "reasons": list(self.reasons),
            "fixes": list(self.fixes),
            "judged": [j.to_json() for j in self.judged],
            "provider_image": self.provider_image.to_json() if self.provider_image else None,
            "notes": list(self.notes),
            "seconds": round(self.seconds, 4),
        }

    def raise_unless_pass(self) -> None:
        """A refusal as ``GateRefused`` (exit 1), an unknown as ``GateUnknown`` (exit 3): one line each."""
        if self.answer == REFUSE:
            raise GateRefused(self.one_line())
        if self.answer == UNKNOWN:
            raise GateUnknown(self.one_line())


def _instance_node(t: InstanceTarget, driver: str | None) -> dict[str, Any]:
    """The instance as a Node object carrying the labels GFD would write on it."""
    labels = {nodelabels.INSTANCE_TYPE: t.instance_type}
    allocatable: dict[str, str] = {}
    if t.gpu_model:
        labels[nodelabels.PRODUCT] = t.gpu_model.replace(" ", "-")
        labels[nodelabels.COUNT] = str(max(1, int(t.gpu_count)))
        allocatable[nodelabels.GPU_RESOURCE] = str(max(1, int(t.gpu_count)))
        if t.compute_capability:
            from imagesmith.matrix.versions import Capability

            cap = Capability.parse(t.compute_capability)
            labels[nodelabels.COMPUTE[0]], labels[nodelabels.COMPUTE[1]] = str(cap.major), str(cap.minor)
        if driver is not None:
            labels[nodelabels.DRIVER_FULL] = driver
    name = t.instance_type + (f"@{driver}" if driver else "")
    return {"metadata": {"name": name, "labels": labels}, "status": {"allocatable": allocatable}}


def _judge(kb: Any, labels: ImageLabels, node: Any) -> Judged:
    from imagesmith.fleet.verdict import image_on_node

    verdict = image_on_node(kb, labels, node)
    shown = tuple(r for r in verdict.reasons if r.severity != "info")
    return Judged(
        node=node.name,
        verdict=verdict.verdict,
        codes=tuple(r.code for r in shown),
        messages=tuple(r.message for r in shown),
    )


def _judge_instance(kb: Any, labels: ImageLabels, t: InstanceTarget) -> tuple[str, tuple[Judged, ...], str]:
    """(answer, verdicts, why-unknown) for an instance at every driver its provider image may ship."""
    from imagesmith.fleet.gfd import node_facts

    if not labels.has_cuda or not t.gpu_model:
        return PASS, (_judge(kb, labels, node_facts(_instance_node(t, None))),), ""
    image = t.provider_image
    if image is None or not image.judge:
        where = (
            f"the provider image {image.id} ships a driver the data does not know ({image.driver}; {image.source})"
            if image is not None
            else f"no provider-image driver data for {t.target} on {t.cloud} with {t.gpu_model}"
        )
        return UNKNOWN, (), where
    judged = tuple(_judge(kb, labels, node_facts(_instance_node(t, v))) for v in image.judge)
    fails = [j for j in judged if j.verdict == "fails"]
    if len(fails) == len(judged):
        return REFUSE, judged, ""
    if fails:
        return (
            UNKNOWN,
            judged,
            f"{image.id} ships {image.driver}: the point release decides "
            f"({', '.join(f'{j.node}: {j.verdict}' for j in judged)})",
        )
    return PASS, judged, ""


def check(
    image_labels: ImageLabels,
    target: Target,
    *,
    image: str = "the dev image",
    curated: Any = None,
    kb: Any = None,
) -> GateAnswer:
    """The gate's answer for the dev image (its labels) on ``target``. ``curated``: an
    ``imagesmith.images.catalog.Catalog`` to find fixes in (default: the embedded plan)."""
    from imagesmith.matrix import knowledge

    started = time.perf_counter()
    kb = kb or knowledge.load()
    if isinstance(target, InstanceTarget):
        answer, judged, why_unknown = _judge_instance(kb, image_labels, target)
        provider = target.provider_image
    else:
        judged = tuple(_judge(kb, image_labels, n) for n in target.nodes)
        failing = [j for j in judged if j.verdict == "fails"]
        answer = REFUSE if len(failing) == len(judged) else PASS
        why_unknown, provider = "", None
    notes: list[str] = []
    if answer == UNKNOWN:
        codes: tuple[str, ...] = (Code.UNKNOWN_VERSION,)
        reasons: tuple[str, ...] = (
            f"cannot judge: {why_unknown}; gate against the node pool instead (--nodes FILE -l label=value, "
            "from `kubectl get nodes -o json`), or name a provider image the data knows (--provider-image)",
        )
    else:
        worst = [j for j in judged if j.verdict == "fails"] or list(judged)
        codes = tuple(dict.fromkeys(c for j in worst for c in j.codes))
        reasons = tuple(dict.fromkeys(m for j in worst for m in j.messages))
        if isinstance(target, PoolTarget) and answer == PASS:
            bad = [j.node for j in judged if j.verdict == "fails"]
            if bad:
                notes.append(
                    f"fails on {', '.join(bad)}: the workspace's GPU Feature Discovery affinity keeps it off them"
                )
    fixes: tuple[str, ...] = ()
    if answer != PASS:
        fixes = _fixes(kb, image_labels, target, codes, image=image, curated=curated)
    return GateAnswer(
        answer=answer,
        image=image,
        target=target.describe(),
        codes=codes,
        reasons=reasons,
        fixes=fixes,
        judged=judged,
        provider_image=provider,
        seconds=time.perf_counter() - started,
        notes=tuple(notes),
    )


# ---- fixes -------------------------------------------------------------------------------------------------


def labels_of(choice: Any) -> ImageLabels:
    """A curated choice's promises (what its io.imagesmith.* labels say in the plan)."""
    return ImageLabels(
        framework=f"{choice.framework}=={choice.framework_version}" if choice.framework else None,
        cuda=choice.cuda,
        min_driver=choice.min_driver,
        full_driver=choice.full_driver,
        sm=choice.sm,
        python=choice.python,
        variant=choice.variant,
    )


def _runs(kb: Any, labels: ImageLabels, target: Target) -> bool:
    if isinstance(target, InstanceTarget):
        return _judge_instance(kb, labels, target)[0] == PASS
    return any(_judge(kb, labels, n).verdict != "fails" for n in target.nodes)


def _fixes(
    kb: Any, labels: ImageLabels, target: Target, codes: tuple[str, ...], *, image: str, curated: Any
) -> tuple[str, ...]:
    from imagesmith.images import catalog as catalog_mod

    fixes: list[str] = []
    pool = curated if curated is not None else catalog_mod.embedded_catalog()
    framework = (labels.framework or "").partition("==")[0] or None
    candidates = [
        c
        for c in pool.choices
        if c.cuda is not None and c.tag != image and (framework is None or c.framework == framework)
    ]
    # Nearest first: the same variant (a dev image is built on a devel image), then the newest CUDA.
    from imagesmith.matrix.versions import NvVersion

    zero = NvVersion((0,))
    candidates.sort(
        key=lambda c: (c.variant == labels.variant, NvVersion.leading(c.cuda) or zero), reverse=True
    )
    for choice in candidates:
        if _runs(kb, labels_of(choice), target):
            # A project answers its shipped base; its dev stage follows that base's devel twin.
            answer = choice.parent_tag if choice.variant == "devel" and choice.parent_tag else choice.tag
            fixes.append(
                f"build the dev image on the curated image {choice.tag} (CUDA {choice.cuda}), which runs there: "
                f"copier update --trust --defaults -d base_image={answer}"
            )
            break
    if isinstance(target, InstanceTarget):
        fixes += _instance_fixes(kb, labels, target, codes, image=image)
    else:
        good = [n for n in target.others if n.has_gpu and _judge(kb, labels, n).verdict != "fails"]
        if good:
            fixes.append(f"another node pool, where it runs: {', '.join(n.name for n in good)}")
    return tuple(fixes)


def _instance_fixes(
    kb: Any, labels: ImageLabels, target: InstanceTarget, codes: tuple[str, ...], *, image: str
) -> list[str]:
    from imagesmith.contract.record import replace

    out: list[str] = []
    if not (set(codes) & KERNEL_CODES):
        # The driver is what fails (or is unknown): another provider image of the cloud that ships one new enough.
        for row in provider_images():
            if row.cloud != target.cloud or not row.judge or row is target.provider_image:
                continue
            if not row.serves(target.gpu_model):
                continue
            moved = replace(target, provider_image=row)
            if _judge_instance(kb, labels, moved)[0] == PASS:
                out.append(
                    f"a node image that ships a new enough driver: {row.id} (driver {row.driver}, {row.kind}; "
                    f"{row.source})"
                )
                break
        return out
    # A GPU the build cannot run on: another instance, from the picker, for the image's own build.
    from imagesmith.picker import PickRequest, pick

    spec = labels.framework if labels.framework and "+" in labels.framework else None
    request = PickRequest(
        gpus=str(max(1, int(target.gpu_count))),
        cloud=target.cloud,
        image=spec or (image if ":" in image else None),
        min_cc=None,
        top=1,
    )
    try:
        result = pick(request)
    except ImagesmithError as exc:  # the picker's refusal is not the gate's: say it and go on
        return [f"another instance: the picker could not be asked ({exc})"]
    if result.choice is not None:
        c = result.choice
        out.append(
            f"another instance: {c.instance_type} ({c.gpu_count:g}x {c.gpu_model}, cc {c.compute_capability}, "
            f"{c.region}) from `imagesmith pick --gpus {request.gpus} --cloud {target.cloud} --image {request.image}`"
        )
    return out
