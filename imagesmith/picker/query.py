"""A parsed, validated request: every flag turned into a typed constraint, every bad value a UsageError."""

from __future__ import annotations

from imagesmith.contract.record import as_dict, field, record
from imagesmith.errors import UnknownName, UsageError
from imagesmith.matrix.versions import Capability
from imagesmith.picker.allocatable import DEFAULT_HEADROOM, Headroom, parse_headroom
from imagesmith.picker.catalog import Catalog
from imagesmith.picker.grammar import (
    Range,
    Ratio,
    parse_capability,
    parse_memory,
    parse_price,
    parse_range,
    require_positive,
    require_whole,
)
from imagesmith.picker.model import CLOUDS, SERVICES
from imagesmith.picker.request import PickRequest

ARCH_ALIASES = {
    "x86_64": "x86_64",
    "amd64": "x86_64",
    "x86-64": "x86_64",
    "arm64": "arm64",
    "aarch64": "arm64",
    "any": "any",
}
# Most CUDA images are built for amd64 only, and the cheapest whole GPU on AWS is the arm64 g5g.xlarge: an
# unconstrained default would hand out a machine the image cannot run on. `--arch any` lifts it.
DEFAULT_ARCH = "x86_64"
BASES = ("nominal", "reported")
FITS = ("pods", "machine")
# SageMaker rows run only inside SageMaker; a plain "cheapest machine" question is about VMs.
DEFAULT_SERVICES = ("ec2", "compute-engine", "azure-vm")
CLOUD_SERVICES = {"aws": ("ec2", "sagemaker"), "gcp": ("compute-engine",), "azure": ("azure-vm",)}


TYPE_CHECKING = False  # typing and dataclasses cost ~25 ms to import; `imagesmith pick` is timed
if TYPE_CHECKING:
    from typing import Any


@record
class ImageFilter:
    """The image's framework build and, per compute capability, whether it can run there (and why not)."""

    spec: str
    verdicts: dict[Capability, tuple[bool, str]]


@record
class Query:
    cpus: Range | None = None
    memory: Range | Ratio | None = None
    gpus: Range | None = None
    wants_gpu: bool = False
    gpu_names: tuple[str, ...] = ()
    gpu_memory: Range | None = None
    gpu_memory_basis: str = "nominal"
    min_cc: Capability | None = None
    arch: str | None = None
    clouds: tuple[str, ...] = ()
    services: tuple[str, ...] = DEFAULT_SERVICES
    regions: tuple[str, ...] = ()
    zones: tuple[str, ...] = ()
    instance_types: tuple[str, ...] = ()
    spot: bool = False
    max_price: float | None = None
    allow_fractional: bool = False
    no_burstable: bool = False
    image: ImageFilter | None = None
    top: int = 5
    # pods: --cpus/--memory are a pod's requests, held to what the node offers pods; machine: to the nameplate.
    fit: str = "pods"
    headroom: Headroom = field(default_factory=lambda: parse_headroom(DEFAULT_HEADROOM))
    request: PickRequest | None = None  # what was asked, as typed

    def describe(self) -> dict[str, Any]:
        """What was asked (every PickRequest field given) with the parsed forms where parsing says more."""
        asked = as_dict(self.request) if self.request else {}
        out: dict[str, Any] = {
            **asked,
            "cpus": self.cpus.text if self.cpus else None,
            "memory": self.memory.text if self.memory else None,
            "gpus": self.gpus.text if self.gpus else ("1+ (any GPU)" if self.wants_gpu else "0"),
            "gpu": list(self.gpu_names) or None,
            "gpu_memory": self.gpu_memory.text if self.gpu_memory else None,
            "gpu_memory_basis": self.gpu_memory_basis,
            "min_cc": str(self.min_cc) if self.min_cc else None,
            "arch": self.arch or "any",
            "cloud": list(self.clouds) or None,
            "service": list(self.services),
            "region": list(self.regions) or None,
            "zone": list(self.zones) or None,
            "instance_type": list(self.instance_types) or None,
            "market": "spot" if self.spot else "on-demand",
            "max_price": self.max_price,
            "allow_fractional": self.allow_fractional,
            "no_burstable": self.no_burstable,
            "image": self.image.spec if self.image else None,
            "top": self.top,
            "fit": self.fit,
            "headroom": self.headroom.text if self.fit == "pods" else None,
        }
        return {k: v for k, v in out.items() if v is not None}


def _split(value: str | None) -> tuple[str, ...]:
    return tuple(v.strip() for v in (value or "").split(",") if v.strip())


def _known(
    kind: str, values: tuple[str, ...], known: list[str], flag: str, *, fold: bool = True
) -> tuple[str, ...]:
    out = []
    index = {k.lower() if fold else k: k for k in known}
    for v in values:
        hit = index.get(v.lower() if fold else v)
        if hit is None:
            import difflib  # only on the error path: it costs start-up time

            close = difflib.get_close_matches(v.lower(), list(index), n=3, cutoff=0.4)
            raise UnknownName(kind, v, [index[c] for c in close] or known[:6], where=flag)
        out.append(hit)
    return tuple(out)


def build(catalog: Catalog, request: PickRequest, *, image: ImageFilter | None = None) -> Query:
    """The parsed, validated query of a request (UsageError naming the flag on bad input)."""
    cpus, memory, gpus, gpu = request.cpus, request.memory, request.gpus, request.gpu
    gpu_memory, gpu_memory_basis, min_cc = request.gpu_memory, request.gpu_memory_basis, request.min_cc
    arch, cloud, service, region = request.arch, request.cloud, request.service, request.region
    zone = request.zone
    spot, max_price, allow_fractional = request.spot, request.max_price, request.allow_fractional
    no_burstable, top = request.no_burstable, request.top
    clouds = _known("cloud", _split(cloud), list(CLOUDS), "--cloud")
    services = _known("service", _split(service), list(SERVICES), "--service")
    if not services:
        services = (
            tuple(s for c in clouds for s in CLOUD_SERVICES[c] if s in DEFAULT_SERVICES)
            if clouds
            else DEFAULT_SERVICES
        )
    elif clouds and not any(s in CLOUD_SERVICES[c] for c in clouds for s in services):
        raise UsageError(
            f"service {','.join(services)} is not offered by cloud {','.join(clouds)}", where="--service"
        )
    regions = _in_catalog(catalog, "region", _split(region), "--region")
    zones = _in_catalog(catalog, "zone", _split(zone), "--zone")
    types = _in_catalog(catalog, "instance_type", _split(request.instance_type), "--instance-type")
    names = _split(gpu)
    models = _names(catalog, "gpu_model") if names else []
    for n in names:
        if not any(_gpu_matches(m, n) for m in models):
            import difflib

            raise UnknownName(
                "GPU model",
                n,
                difflib.get_close_matches(n.upper(), models, n=3, cutoff=0.3) or models,
                where="--gpu",
            )
    if arch is not None and arch.lower() not in ARCH_ALIASES:
        raise UsageError("architecture is x86_64 (amd64), arm64 (aarch64) or any", where=f"--arch {arch!r}")
    if gpu_memory_basis not in BASES:
        raise UsageError("basis is nominal or reported", where=f"--gpu-memory-basis {gpu_memory_basis!r}")
    if top < 0:
        raise UsageError("must be 0 or more", where=f"--top {top}")
    gpus_range = parse_range(gpus, flag="--gpus") if gpus is not None else None
    if gpus_range is not None and not allow_fractional:
        require_whole(gpus_range, flag="--gpus")
    gpu_flags = bool(names or gpu_memory or min_cc or image or allow_fractional)
    if gpus_range is not None and gpus_range.high is not None and gpus_range.high < 0.5 and gpu_flags:
        raise UsageError("asks for no GPU but other flags ask for one", where=f"--gpus {gpus}")
    if request.fit not in FITS:
        raise UsageError("fit is pods or machine", where=f"--fit {request.fit!r}")
    pods = request.fit == "pods"
    cpus_range = (
        require_positive(parse_range(cpus, flag="--cpus"), flag="--cpus", what="vCPUs")
        if cpus is not None
        else None
    )
    memory_value = _positive_memory(parse_memory(memory)) if memory is not None else None
    return Query(
        cpus=_floor(cpus_range) if pods else cpus_range,
        memory=_floor(memory_value) if pods and isinstance(memory_value, Range) else memory_value,
        gpus=gpus_range,
        wants_gpu=gpu_flags or (gpus_range is not None and (gpus_range.low or 0) > 0),
        gpu_names=names,
        gpu_memory=parse_range(gpu_memory, flag="--gpu-memory") if gpu_memory is not None else None,
        gpu_memory_basis=gpu_memory_basis,
        min_cc=parse_capability(min_cc) if min_cc is not None else None,
        arch=_arch(arch),
        clouds=clouds,
        services=services,
        regions=regions,
        zones=zones,
        instance_types=types,
        spot=spot,
        max_price=parse_price(max_price) if max_price is not None else None,
        allow_fractional=allow_fractional,
        no_burstable=no_burstable,
        image=image,
        top=top,
        fit=request.fit,
        headroom=parse_headroom(request.headroom),
        request=request,
    )


def _floor(value: Range | None) -> Range | None:
    """A pod's request N is a floor: the node must offer at least N (no node offers exactly N to pods)."""
    if value is None or not value.exact:
        return value
    assert value.low is not None and value.high is not None
    return Range(low=(value.low + value.high) / 2, high=None, text=value.text)


def _positive_memory(value: Range | Ratio) -> Range | Ratio:
    if isinstance(value, Ratio):
        if value.per_vcpu <= 0:
            raise UsageError("memory per vCPU must be above 0", where=f"--memory {value.text!r}")
        return value
    return require_positive(value, flag="--memory", what="memory")


def _in_catalog(catalog: Catalog, column: str, values: tuple[str, ...], flag: str) -> tuple[str, ...]:
    """The values as the catalog spells them (the catalog's names are only listed when values are given)."""
    if not values:
        return ()
    return _known(column.replace("_", " "), values, _names(catalog, column), flag)


def _names(catalog: Catalog, column: str) -> list[str]:
    key = ("names", column)
    if key not in catalog.cache:
        catalog.cache[key] = sorted({v for r in catalog.rows if (v := getattr(r, column))})
    names: list[str] = catalog.cache[key]
    return names


def _arch(arch: str | None) -> str | None:
    value = ARCH_ALIASES[arch.lower()] if arch is not None else DEFAULT_ARCH
    return None if value == "any" else value


def _gpu_matches(model: str, name: str) -> bool:
    """`A100` matches A100 and A100-80GB; `A100-80GB` matches only itself (case-insensitive)."""
    m, n = model.lower(), name.lower()
    return m == n or m.startswith(n + "-")
