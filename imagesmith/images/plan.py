"""Decide, before anything runs, the smallest set of images that gives every fleet node a working image
for every requested framework line. Pure: policy + knowledge in, plan out."""

from __future__ import annotations

import itertools

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from imagesmith.contract import labels as labels_contract
from imagesmith.contract import tags
from imagesmith.contract.record import record
from imagesmith.contract.sm import format_sm, parse_sm
from imagesmith.errors import DataError
from imagesmith.images.policy import FleetNode, FrameworkLine, OsBase, Policy
from imagesmith.matrix import rules
from imagesmith.matrix.knowledge import Knowledge
from imagesmith.matrix.model import Provenance
from imagesmith.matrix.spec import latest_version
from imagesmith.matrix.versions import NvVersion

TORCH_INDEX = "https://download.pytorch.org/whl/{variant}"
IMPORTS = {"torch": "torch", "jax": "jax", "tensorflow": "tensorflow", "cuda": None}
# TensorFlow brings CUDA as pip wheels only through the [and-cuda] extra (2.15 on); older lines
# need a system toolkit, which the curated images never carry.
TF_MIN_PIP_CUDA = Version("2.15")


@record
class Candidate:
    """One installable build of a framework line and how it fares on every fleet node."""

    line: FrameworkLine
    framework: str
    version: str
    variant: str
    cuda: NvVersion
    cudnn: NvVersion | None
    sass: tuple[NvVersion, ...]
    ptx: tuple[NvVersion, ...]
    python: str
    pypi_default: bool
    experimental: bool
    verdicts: tuple[tuple[str, rules.Verdict], ...]
    provenance: Provenance | None

    @property
    def label(self) -> str:
        return (
            f"{self.framework}=={self.version}+{self.variant}"
            if self.framework != "cuda"
            else f"cuda=={self.version}"
        )

    def verdict(self, node: str) -> rules.Verdict:
        return dict(self.verdicts)[node]

    def runs_on(self) -> frozenset[str]:
        return frozenset(name for name, v in self.verdicts if v.ok)

    @property
    def sm_list(self) -> str:
        return format_sm([c.sm for c in self.sass], [f"compute_{p.major}{p.minor}" for p in self.ptx])


@record
class PlannedImage:
    name: str
    tag: str
    aliases: tuple[str, ...]
    parent: str | None
    base: OsBase
    python: str
    variant: str  # base | runtime | devel
    framework: str | None
    version: str | None
    build_variant: str | None
    cuda: NvVersion | None
    cudnn: NvVersion | None
    min_driver: NvVersion | None
    full_driver: NvVersion | None
    sm: str
    nodes: tuple[str, ...]
    pip: tuple[str, ...]
    index_url: str | None
    import_name: str | None
    labels: tuple[tuple[str, str], ...]
    tests: tuple[str, ...]

    @property
    def needs_imagesmith_wheel(self) -> bool:
        return self.parent is None

    @property
    def framework_spec(self) -> str | None:
        if self.framework is None:
            return None
        return (
            f"cuda=={self.version}"
            if self.framework == "cuda"
            else f"{self.framework}=={self.version}+{self.build_variant}"
        )


@record
class Decision:
    subject: str
    reason: str
    # For an uncovered pair: the fleet node and the framework line (the subject names both).
    node: str | None = None
    line: str | None = None


@record
class Plan:
    policy: Policy
    images: tuple[PlannedImage, ...]
    left_out: tuple[Decision, ...]
    uncovered: tuple[Decision, ...]
    coverage: tuple[tuple[str, str, str, str], ...]  # (line, node, image build, verdict)

    def image(self, name: str) -> PlannedImage:
        for image in self.images:
            if image.name == name:
                return image
        raise KeyError(name)


# ---- candidates ---------------------------------------------------------------------------------------
def _node_verdicts(
    kb: Knowledge,
    fleet: tuple[FleetNode, ...],
    *,
    framework: str,
    cuda: NvVersion,
    sass: tuple[NvVersion, ...],
    ptx: tuple[NvVersion, ...],
) -> tuple[tuple[str, rules.Verdict], ...]:
    out = []
    for node in fleet:
        if framework == "cuda":
            # A runtime-only image carries no kernels: only the driver side matters.
            verdict = rules.gpu_on_driver(kb, gpu=node.gpu, driver=node.driver) + rules.runtime_on_driver(
                kb, cuda=cuda, driver=node.driver, gpu=node.gpu
            )
        else:
            verdict = rules.evaluate(kb, cuda=cuda, sass=sass, ptx=ptx, driver=node.driver, gpu=node.gpu)
        out.append((node.name, verdict))
    return tuple(out)


def candidates(kb: Knowledge, policy: Policy, line: FrameworkLine) -> tuple[list[Candidate], list[Decision]]:
    """Every build of the newest release matching the line, with its verdict on every node."""
    notes: list[Decision] = []
    if line.framework == "cuda":
        cuda = NvVersion.parse(line.specifier)
        family = kb.family(cuda.major)
        if family is None or not any(t.version.truncate(2) == cuda.truncate(2) for t in kb.toolkits):
            raise DataError(f"no CUDA toolkit {line.specifier} in the matrix data", where=line.where)
        toolkit = kb.toolkit_min_driver(cuda)
        return [
            Candidate(
                line=line,
                framework="cuda",
                version=str(cuda.truncate(2)),
                variant=f"cu{cuda.major}",
                cuda=cuda.truncate(2),
                cudnn=None,
                sass=(),
                ptx=(),
                python=">=3.8",
                pypi_default=True,
                experimental=False,
                verdicts=_node_verdicts(kb, policy.fleet, framework="cuda", cuda=cuda, sass=(), ptx=()),
                provenance=toolkit.provenance if toolkit else family.provenance,
            )
        ], notes
    spec = SpecifierSet(line.specifier)
    releases = sorted(kb.releases(line.framework), key=lambda r: Version(latest_version(r)), reverse=True)
    for release in releases:
        version = latest_version(release)
        if not spec.contains(version, prereleases=False):
            continue
        builds = [b for b in kb.builds(line.framework) if b.release == release.version]
        if not builds:
            notes.append(
                Decision(
                    subject=f"{line.framework}=={version}", reason="no CUDA build facts in the matrix data"
                )
            )
            continue
        if line.framework == "tensorflow" and Version(version) < TF_MIN_PIP_CUDA:
            notes.append(
                Decision(
                    subject=f"tensorflow=={version}",
                    reason="its CUDA libraries do not come as pip wheels (tensorflow[and-cuda] starts at 2.15); curated images never add a system toolkit",
                )
            )
            continue
        out = []
        for build in builds:
            out.append(
                Candidate(
                    line=line,
                    framework=line.framework,
                    version=version,
                    variant=build.variant,
                    cuda=build.cuda,
                    cudnn=build.cudnn,
                    sass=build.sass,
                    ptx=build.ptx,
                    python=release.python,
                    pypi_default=release.pypi_default == build.variant,
                    experimental=build.role == "experimental",
                    verdicts=_node_verdicts(
                        kb,
                        policy.fleet,
                        framework=line.framework,
                        cuda=build.cuda,
                        sass=build.sass,
                        ptx=build.ptx,
                    ),
                    provenance=build.provenance,
                )
            )
        return out, notes
    raise DataError(f"no known {line.framework} release matches {line.specifier!r}", where=line.where)


# ---- the cover ------------------------------------------------------------------------------------------
def _assign(chosen: tuple[Candidate, ...], node: str) -> Candidate | None:
    """The build a node should run from a chosen set: a clean verdict first, then the newest CUDA."""
    usable = [c for c in chosen if c.verdict(node).ok]
    if not usable:
        return None
    return min(
        usable,
        key=lambda c: (
            c.verdict(node).verdict != rules.WORKS,
            c.experimental,
            tuple(-p for p in c.cuda.parts),
        ),
    )


def choose(cands: list[Candidate], nodes: list[str]) -> tuple[Candidate, ...]:
    """Smallest subset covering every coverable node; ties: fewest caveats, fewest experimental, newest CUDA."""
    coverable = frozenset().union(*(c.runs_on() for c in cands)) if cands else frozenset()
    for size in range(0 if not coverable else 1, len(cands) + 1):
        best: tuple[tuple[object, ...], tuple[Candidate, ...]] | None = None
        for subset in itertools.combinations(cands, size):
            covered = frozenset().union(*(c.runs_on() for c in subset)) if subset else frozenset()
            if covered != coverable:
                continue
            caveats = sum(
                1
                for n in nodes
                if (a := _assign(subset, n)) is not None and a.verdict(n).verdict != rules.WORKS
            )
            experimental = sum(c.experimental for c in subset)
            newest = tuple(sorted(tuple(-p for p in c.cuda.parts) for c in subset))
            score = (caveats, experimental, newest, tuple(c.variant for c in subset))
            if best is None or score < best[0]:
                best = (score, subset)
        if best is not None:
            return best[1]
    return ()


# ---- naming -------------------------------------------------------------------------------------------
def driver_floors(kb: Knowledge, cuda: NvVersion) -> tuple[NvVersion | None, NvVersion | None]:
    """(the minimum driver the image promises, the toolkit's own driver floor) for a CUDA runtime: under
    minor-version compatibility the family's floor (R525 for 12.x), else the toolkit's; what
    io.imagesmith.min-driver and .full-driver say."""
    family = kb.family(cuda.major)
    toolkit = kb.toolkit_min_driver(cuda)
    full = toolkit.min_driver if toolkit else None
    floor = family.mvc_min_driver if family and family.minor_version_compatibility else full
    return floor, full


def _cuda2(v: NvVersion) -> str:
    return str(v.truncate(2))


def _base_name(base: OsBase) -> str:
    return f"base-py{base.python}-{base.name}"


def _image_name(c: Candidate, base: OsBase, variant: str) -> str:
    if c.framework == "cuda":
        return f"cuda-{c.version}-py{base.python}-{base.name}-{variant}"
    return f"{c.framework}-{c.version}-{c.variant}-py{base.python}-{base.name}-{variant}"


def _tag(policy: Policy, c: Candidate, base: OsBase, variant: str) -> str:
    return tags.framework_tag(
        policy.registry,
        framework=c.framework,
        version=c.version,
        python=base.python,
        cuda=_cuda2(c.cuda),
        variant=variant,
        os=base.name,
        release=policy.release,
    )


def _release_line(c: Candidate) -> str:
    v = Version(c.version)
    return f"{v.major}.{v.minor}"


# ---- the plan -----------------------------------------------------------------------------------------
def make_plan(kb: Knowledge, policy: Policy) -> Plan:
    node_names = [n.name for n in policy.fleet]
    left_out: list[Decision] = []
    uncovered: list[Decision] = []
    coverage: list[tuple[str, str, str, str]] = []
    chosen_by_line: list[tuple[FrameworkLine, tuple[Candidate, ...]]] = []
    for line in policy.lines:
        cands, notes = candidates(kb, policy, line)
        left_out.extend(notes)
        chosen = choose(cands, node_names)
        chosen_by_line.append((line, chosen))
        line_name = f"{line.framework} {line.specifier}"
        for cand in cands:
            if cand in chosen:
                continue
            runs = cand.runs_on()
            if not runs:
                reason = "runs on no fleet node"
            else:
                reason = (
                    f"its {len(runs)} node(s) are already covered by {', '.join(c.label for c in chosen)}"
                )
            left_out.append(Decision(subject=cand.label, reason=reason))
        for node in node_names:
            assigned = _assign(chosen, node)
            if assigned is None:
                why = "; ".join(
                    f"{c.label}: "
                    + ", ".join(r.code for r in c.verdict(node).reasons if r.severity == "fail")
                    for c in cands
                )
                uncovered.append(
                    Decision(
                        subject=f"{node} x {line_name}",
                        reason=f"no build runs there ({why})",
                        node=node,
                        line=line_name,
                    )
                )
                coverage.append((line_name, node, "-", "fails"))
            else:
                coverage.append((line_name, node, assigned.label, assigned.verdict(node).verdict))
    images = _images(kb, policy, chosen_by_line, left_out)
    return Plan(
        policy=policy,
        images=tuple(images),
        left_out=tuple(left_out),
        uncovered=tuple(uncovered),
        coverage=tuple(coverage),
    )


def tool_version(policy: Policy) -> str:
    """The imagesmith release the images carry: the policy's pin, else the imagesmith making the plan."""
    from imagesmith import __version__

    return policy.imagesmith_version or __version__


def _common_labels(policy: Policy, name: str, title: str, version: str, base_ref: str) -> dict[str, str]:
    labels = labels_contract.oci(
        title=name,
        description=title,
        version=version,
        vendor=policy.vendor,
        authors=policy.maintainer,
        base_name=base_ref,
    )
    labels[labels_contract.TOOL_VERSION] = tool_version(policy)
    return labels


def _pip_for(c: Candidate, variant: str) -> tuple[tuple[str, ...], str | None]:
    if variant == "devel":
        if c.cuda.major >= 13:
            # From 13.0 nvcc's compiler front end (nvvm) and headers (crt) are wheels of their own that
            # nvcc requires unpinned: left alone, pip takes the newest, whose PTX this ptxas rejects.
            # CCCL (<nv/target>, CUB, Thrust) is needed by every CUDA C++ source that includes cuda_fp16.h.
            x_y = _cuda2(c.cuda)
            return (
                f"nvidia-cuda-nvcc=={x_y}.*",
                f"nvidia-nvvm=={x_y}.*",
                f"nvidia-cuda-crt=={x_y}.*",
                f"nvidia-cuda-cccl=={x_y}.*",
            ), None
        return (
            f"nvidia-cuda-nvcc-cu{c.cuda.major}=={_cuda2(c.cuda)}.*",
            f"nvidia-cuda-cccl-cu{c.cuda.major}=={_cuda2(c.cuda)}.*",
        ), None
    if c.framework == "torch":
        if c.pypi_default:
            return (f"torch=={c.version}",), None
        # Pin the local version so PyPI's default build can never win over the variant's index.
        return (f"torch=={c.version}+{c.variant}",), TORCH_INDEX.format(variant=c.variant)
    if c.framework == "jax":
        return (f"jax[{c.variant}]=={c.version}", _runtime_pin(c)), None
    if c.framework == "tensorflow":
        return (f"tensorflow[and-cuda]=={c.version}", _runtime_pin(c)), None
    if c.cuda.major >= 13:
        return (f"nvidia-cuda-runtime=={_cuda2(c.cuda)}.*",), None
    return (f"nvidia-cuda-runtime-cu{c.cuda.major}=={_cuda2(c.cuda)}.*",), None


def _runtime_pin(c: Candidate) -> str:
    """The CUDA runtime wheel at the planned release. JAX's and TensorFlow's CUDA extras ask for ranges,
    so pip takes the newest 12.x: the TensorFlow 2.21 image got libcudart 12.9 under a 12.5 label. The
    pin keeps the image's runtime what its labels (and so the driver floors) say."""
    if c.cuda.major >= 13:
        return f"nvidia-cuda-runtime=={_cuda2(c.cuda)}.*"
    return f"nvidia-cuda-runtime-cu{c.cuda.major}=={_cuda2(c.cuda)}.*"


def _images(
    kb: Knowledge,
    policy: Policy,
    chosen_by_line: list[tuple[FrameworkLine, tuple[Candidate, ...]]],
    left_out: list[Decision],
) -> list[PlannedImage]:
    images: dict[str, PlannedImage] = {}
    order: list[str] = []
    variants = ("runtime", "devel") if "devel" in policy.variants else ("runtime",)

    def add(image: PlannedImage) -> None:
        if image.name not in images:
            images[image.name] = image
            order.append(image.name)

    rolling: set[str] = set()
    for _line, chosen in chosen_by_line:
        newest = max(chosen, key=lambda c: c.cuda) if chosen else None
        for cand in chosen:
            for python in policy.pythons:
                if cand.framework != "cuda" and not SpecifierSet(cand.python).contains(python):
                    left_out.append(
                        Decision(
                            subject=f"{cand.label} on Python {python}",
                            reason=f"the release supports Python {cand.python}",
                        )
                    )
                    continue
                for base in (b for b in policy.bases if b.python == python):
                    base_image = _base(policy, base)
                    add(base_image)
                    parent = base_image
                    floor, full = driver_floors(kb, cand.cuda)
                    nodes = tuple(sorted(cand.runs_on(), key=[n.name for n in policy.fleet].index))
                    for variant in variants:
                        name = _image_name(cand, base, variant)
                        tag = _tag(policy, cand, base, variant)
                        aliases = []
                        first_home = python == policy.pythons[0] and base == next(
                            b for b in policy.bases if b.python == python
                        )
                        if cand.framework != "cuda" and first_home:
                            for alias in tags.rolling_aliases(
                                policy.registry,
                                framework=cand.framework,
                                release_line=_release_line(cand),
                                cuda=_cuda2(cand.cuda),
                                variant=variant,
                                newest=cand is newest,
                            ):
                                if alias not in rolling:
                                    rolling.add(alias)
                                    aliases.append(alias)
                        pip, index = _pip_for(cand, variant)
                        labels = _common_labels(
                            policy,
                            name,
                            f"{cand.label} ({variant}) on {base.description}, Python {python}",
                            cand.version,
                            parent.tag,
                        )
                        labels.update(
                            labels_contract.ImageLabels(
                                framework=cand.label,
                                cuda=str(cand.cuda),
                                min_driver=str(floor) if floor else None,
                                full_driver=str(full) if full else None,
                                sm=parse_sm(cand.sm_list),
                                python=python,
                                cudnn=str(cand.cudnn) if cand.cudnn else None,
                                variant=variant,
                                os=base.name,
                            ).to_labels()
                        )
                        tests = _tests(cand.framework, variant, cand.cuda.major)
                        image = PlannedImage(
                            name=name,
                            tag=tag,
                            aliases=tuple(aliases),
                            parent=parent.name,
                            base=base,
                            python=python,
                            variant=variant,
                            framework=cand.framework,
                            version=cand.version,
                            build_variant=cand.variant,
                            cuda=cand.cuda,
                            cudnn=cand.cudnn,
                            min_driver=floor,
                            full_driver=full,
                            sm=cand.sm_list,
                            nodes=nodes,
                            pip=pip,
                            index_url=index,
                            import_name=IMPORTS[cand.framework],
                            labels=tuple(sorted(labels.items())),
                            tests=tests,
                        )
                        add(image)
                        parent = image
    return [images[n] for n in order]


def _base(policy: Policy, base: OsBase) -> PlannedImage:
    name = _base_name(base)
    labels = _common_labels(
        policy, name, f"{base.description} with Python {base.python} and imagesmith", base.python, base.image
    )
    labels.update(labels_contract.ImageLabels(python=base.python, os=base.name, variant="base").to_labels())
    aliases = (
        (tags.base_alias(policy.registry, python=base.python),)
        if base == next(b for b in policy.bases if b.python == base.python)
        else ()
    )
    return PlannedImage(
        name=name,
        tag=tags.base_tag(policy.registry, python=base.python, os=base.name, release=policy.release),
        aliases=aliases,
        parent=None,
        base=base,
        python=base.python,
        variant="base",
        framework=None,
        version=None,
        build_variant=None,
        cuda=None,
        cudnn=None,
        min_driver=None,
        full_driver=None,
        sm="",
        nodes=tuple(n.name for n in policy.fleet),
        pip=(),
        index_url=None,
        import_name=None,
        labels=tuple(sorted(labels.items())),
        tests=("doctor", "labels", "cuda-duplicates"),
    )


def _tests(framework: str, variant: str, cuda_major: int) -> tuple[str, ...]:
    """An image's own smoke tests; the builder adds every ancestor's (so devel re-runs runtime's).

    PyPI's CUDA 12 compiler wheel (nvidia-cuda-nvcc-cu12, 12.6.85 and 12.9.86 read) carries ptxas and
    nvvm but no nvcc driver: a CUDA 12 devel image from PyPI has what Triton and XLA JIT with, and no
    nvcc to compile or build extensions with. Only CUDA 13 devel images promise (and test) nvcc.
    """
    if variant == "devel":
        if cuda_major < 13:
            return ()
        return ("nvcc-compile",) + (("torch-extension",) if framework == "torch" else ())
    own: tuple[str, ...] = ("doctor", "labels")
    if IMPORTS[framework]:
        own += ("framework-import",)
    return (*own, "framework-versions")
