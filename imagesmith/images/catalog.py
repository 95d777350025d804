"""The curated images as choices for project templates: every project starts FROM one of these."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from imagesmith.images.plan import make_plan
from imagesmith.images.policy import embedded_policy
from imagesmith.matrix import knowledge


@dataclass(frozen=True, kw_only=True)
class CuratedChoice:
    tag: str
    framework: str | None
    framework_version: str | None
    python: str
    variant: str
    cuda: str | None


@cache
def curated_choices() -> tuple[CuratedChoice, ...]:
    """Every image of the plan made from the policy embedded in this imagesmith version."""
    kb = knowledge.load()
    # The embedded default, not ./imagesmith.yaml: a generated project must not depend on where copier ran.
    plan = make_plan(kb, embedded_policy(kb))
    return tuple(
        CuratedChoice(
            tag=image.tag,
            framework=image.framework,
            framework_version=image.version,
            python=image.python,
            variant="runtime" if image.variant == "base" else image.variant,
            cuda=str(image.cuda.truncate(2)) if image.cuda else None,
        )
        for image in plan.images
    )


def default_image(*, framework: str | None, python: str | None = None, variant: str = "runtime") -> str:
    """The tag a new project should start FROM: the newest-CUDA image of the framework, else the base."""
    choices = [c for c in curated_choices() if python is None or c.python == python]
    if framework in (None, "none"):
        bases = [c for c in choices if c.framework is None]
        if bases:
            return bases[0].tag
    matches = [c for c in choices if c.framework == framework and c.variant == variant]
    if matches:
        return max(matches, key=lambda c: tuple(int(p) for p in (c.cuda or "0").split("."))).tag
    known = sorted({c.framework or "none" for c in curated_choices()})
    raise ValueError(f"no curated {variant} image for framework {framework!r} (known: {', '.join(known)})")
