"""`--image TAG`: which compute capabilities can the image's framework build run on? (joined from the matrix)

A curated tag reads ``<repo>/<framework>:<version>-py<py>-cu<cuda>-<variant>-<os>``, e.g.
``ghcr.io/acme/ml/torch:2.8.0-py3.11-cu12.8-runtime-bookworm``; it becomes the framework spec the matrix resolves
(torch: ``torch==2.8.0+cu128``; jax: ``jax==V+cuda12`` by CUDA major; tensorflow: ``tensorflow==V+cuda``).
A spec such as ``torch==2.8.0+cu128`` is taken as is.
"""

from __future__ import annotations

from imagesmith.contract.tags import parse_framework_tag
from imagesmith.errors import UsageError
from imagesmith.matrix.versions import Capability, NvVersion
from imagesmith.picker.query import ImageFilter

_FRAMEWORKS = {
    "torch": "torch",
    "pytorch": "torch",
    "jax": "jax",
    "tensorflow": "tensorflow",
    "tf": "tensorflow",
}


def spec_for(image: str) -> str:
    """The matrix framework spec for an image tag or spec; UsageError naming --image otherwise."""
    text = image.strip()
    if "==" in text:
        return text
    m = parse_framework_tag(text)
    if m is None:
        raise UsageError(
            "expected a curated tag <repo>/<framework>:<version>-py<py>-cu<cuda>-<variant>-<os> "
            "or a framework spec like torch==2.8.0+cu128",
            where=f"--image {image!r}",
        )
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


def image_filter(image: str, capabilities: set[Capability]) -> ImageFilter:
    """Resolve the build through the matrix and judge every capability in the catalog once."""
    from imagesmith.matrix import knowledge, rules, spec

    text = spec_for(image)
    kb = knowledge.load()
    build = spec.resolve(kb, text, where=f"--image {image!r}")
    verdicts: dict[Capability, tuple[bool, str]] = {}
    for cap in capabilities:
        verdict = rules.kernel_for_gpu(sass=build.sass, ptx=build.ptx, capability=cap)
        why = "; ".join(r.message for r in verdict.reasons)
        verdicts[cap] = (verdict.verdict != "fails", why)
    return ImageFilter(spec=build.spec, verdicts=verdicts)
