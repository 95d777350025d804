"""`--image TAG`: which compute capabilities can the image's framework build run on? (joined from the matrix)

A curated tag reads ``<repo>/<framework>:<version>-py<py>-cu<cuda>-<variant>-<os>``, e.g.
``ghcr.io/acme/ml/torch:2.8.0-py3.11-cu12.8-runtime-bookworm``; it becomes the framework spec the matrix resolves
(torch: ``torch==2.8.0+cu128``; jax: ``jax==V+cuda12`` by CUDA major; tensorflow: ``tensorflow==V+cuda``).
A spec such as ``torch==2.8.0+cu128`` is taken as is. Any other reference is an image to read: its labels come
from its registry without pulling (else the local engine, ``imagesmith.registry.facts``) and are read through
the contract: ``io.imagesmith.framework`` is the spec; an image that names no framework build but carries
``io.imagesmith.sm`` is judged on those kernels directly.
"""

from __future__ import annotations

from imagesmith.contract.tags import parse_framework_tag
from imagesmith.errors import UsageError
from imagesmith.matrix.versions import Capability, NvVersion
from imagesmith.picker.query import ImageFilter

TYPE_CHECKING = False  # mypy treats this name as True
if TYPE_CHECKING:
    from imagesmith.contract.labels import ImageLabels

_FRAMEWORKS = {
    "torch": "torch",
    "pytorch": "torch",
    "jax": "jax",
    "tensorflow": "tensorflow",
    "tf": "tensorflow",
}


EXPECTED = (
    "a curated tag <repo>/<framework>:<version>-py<py>-cu<cuda>-<variant>-<os>, a framework spec like "
    "torch==2.8.0+cu128, or an image whose io.imagesmith.* labels can be read"
)


def _spec_from_text(image: str) -> str | None:
    """The spec a framework spec or a curated tag spells out; None for any other reference."""
    text = image.strip()
    if "==" in text:
        return text
    m = parse_framework_tag(text)
    if m is None:
        return None
    framework = _FRAMEWORKS.get(m.framework)
    if framework is None:
        raise UsageError(
            f"no framework named {m.framework!r} (known: {', '.join(sorted(set(_FRAMEWORKS.values())))})",
            where=f"--image {image!r}",
        )

    try:
        cuda = NvVersion.parse(m.cuda)
    except ValueError:
        raise UsageError(f"the tag's CUDA {m.cuda!r} is not a version", where=f"--image {image!r}") from None
    if framework == "torch":
        build = f"cu{cuda.major}{cuda.minor}"
    elif framework == "jax":
        build = f"cuda{cuda.major}"
    else:
        build = "cuda"
    return f"{framework}=={m.version}+{build}"


def _labels(image: str) -> ImageLabels:
    """The image's promises, read from its registry (or the local engine) through the contract."""
    from imagesmith.errors import ImagesmithError
    from imagesmith.registry.facts import image_facts

    try:
        return image_facts(image).promised
    except ImagesmithError as exc:
        raise UsageError(f"expected {EXPECTED}; {exc.one_line()}", where=f"--image {image!r}") from None


def _framework_spec(promised: ImageLabels) -> str | None:
    """``io.imagesmith.framework`` when it names a framework build the matrix knows (not a CUDA-only image)."""
    name, sep, _rest = (promised.framework or "").partition("==")
    return promised.framework if sep and name in _FRAMEWORKS.values() else None


def spec_for(image: str) -> str:
    """The matrix framework spec for an image tag, spec or labelled image; UsageError naming --image otherwise."""
    spec = _spec_from_text(image)
    if spec is not None:
        return spec
    spec = _framework_spec(_labels(image))
    if spec is None:
        raise UsageError(
            "the image's labels name no framework build (io.imagesmith.framework)", where=f"--image {image!r}"
        )
    return spec


def _sm_filter(image: str, promised: ImageLabels, capabilities: set[Capability]) -> ImageFilter:
    """Judge each capability on the kernels the image's ``io.imagesmith.sm`` label promises."""
    from imagesmith.contract.sm import ptx_of, sass_of
    from imagesmith.matrix import rules

    def caps(tokens: tuple[str, ...]) -> tuple[Capability, ...]:
        parsed, refused = Capability.parse_all(tokens)
        if refused:
            raise UsageError(f"the image's io.imagesmith.sm has {refused[0]!r}", where=f"--image {image!r}")
        return parsed

    sass, ptx = caps(sass_of(promised.sm)), caps(ptx_of(promised.sm))
    verdicts: dict[Capability, tuple[bool, str]] = {}
    for cap in capabilities:
        verdict = rules.kernel_for_gpu(sass=sass, ptx=ptx, capability=cap)
        verdicts[cap] = (verdict.verdict != "fails", "; ".join(r.message for r in verdict.reasons))
    return ImageFilter(spec=promised.framework or f"{image} ({','.join(promised.sm)})", verdicts=verdicts)


def image_filter(image: str, capabilities: set[Capability]) -> ImageFilter:
    """Resolve the build through the matrix and judge every capability in the catalog once."""
    from imagesmith.matrix import knowledge, rules, spec

    text = _spec_from_text(image)
    if text is None:
        promised = _labels(image)
        text = _framework_spec(promised)
        if text is None:
            if promised.sm:
                return _sm_filter(image, promised, capabilities)
            raise UsageError(
                "the image's labels name no framework build (io.imagesmith.framework) and no kernels "
                "(io.imagesmith.sm)",
                where=f"--image {image!r}",
            )
    kb = knowledge.load()
    build = spec.resolve(kb, text, where=f"--image {image!r}")
    verdicts: dict[Capability, tuple[bool, str]] = {}
    for cap in capabilities:
        verdict = rules.kernel_for_gpu(sass=build.sass, ptx=build.ptx, capability=cap)
        why = "; ".join(r.message for r in verdict.reasons)
        verdicts[cap] = (verdict.verdict != "fails", why)
    return ImageFilter(spec=build.spec, verdicts=verdicts)
