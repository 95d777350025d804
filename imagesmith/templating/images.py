"""Base-image questions answered from the team's curated image plan, so a project is always FROM a curated image.

Pure: a catalog (``imagesmith.images.catalog``) and the answers so far in, menus, defaults and verdicts out.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

from imagesmith.contract.tags import repository_of
from imagesmith.errors import UsageError
from imagesmith.images.catalog import Catalog, CuratedChoice, coverage_key, python_key

SUGGESTIONS = 3


def framework_key(framework: str | None) -> str | None:
    """The template says "none" where the catalog says None (the plain base image)."""
    if framework is None:
        return None
    text = str(framework).strip().lower()
    return None if text in ("", "none") else text


def python_versions(choices: Sequence[CuratedChoice], *, framework: str | None) -> list[str]:
    """Pythons with a curated image for this framework, newest first (all Pythons if none match)."""
    fw = framework_key(framework)
    matching = [c.python for c in choices if c.framework == fw] or [c.python for c in choices]
    return sorted({p for p in matching if p}, key=python_key, reverse=True)


def fits(
    choices: Sequence[CuratedChoice], *, framework: str | None, python: str | None, accelerator: str
) -> list[CuratedChoice]:
    """The images that fit the answers so far, best first: runtime before devel, then the default rule.

    Narrowing is soft (a filter that leaves nothing is dropped) so there is always a fit.
    """
    fw = framework_key(framework)
    pool = list(choices)
    for keep_if in (
        lambda c: c.framework == fw,
        lambda c: python is None or c.python == str(python),
        lambda c: (c.cuda is None) == (accelerator == "cpu"),
    ):
        pool = [c for c in pool if keep_if(c)] or pool
    # The default rule (most fleet nodes, then newest CUDA) orders the menu, so the default comes first.
    # Widest coverage and newest CUDA first, then runtime before the other variants (sorts are stable).
    by_coverage = sorted(pool, key=coverage_key, reverse=True)
    return sorted(by_coverage, key=lambda c: c.variant != "runtime")


def image_tags(
    choices: Sequence[CuratedChoice],
    *,
    framework: str | None,
    python: str | None,
    accelerator: str,
    keep: str = "",
) -> list[str]:
    """Curated tags for the menu: the fits first, then every other image of the plan.

    ``keep`` is an answer already given (``-d base_image=``, or recorded by an earlier copy) that the
    menu must contain for copier to accept it, such as a rolling alias. The caller decides whether it
    is acceptable (``check_image``).
    """
    first = [c.tag for c in fits(choices, framework=framework, python=python, accelerator=accelerator)]
    tags = first + [c.tag for c in choices if c.tag not in first]
    if keep and keep not in tags:
        tags.append(keep)
    return tags


def default_choice(
    choices: Sequence[CuratedChoice], *, framework: str | None, python: str | None, accelerator: str
) -> CuratedChoice | None:
    best = fits(choices, framework=framework, python=python, accelerator=accelerator)
    return best[0] if best else None


def default_tag(
    choices: Sequence[CuratedChoice], *, framework: str | None, python: str | None, accelerator: str
) -> str:
    """The runtime image of the framework that runs on the most fleet nodes (ties: newest CUDA)."""
    best = default_choice(choices, framework=framework, python=python, accelerator=accelerator)
    return best.tag if best else ""


def explain_default(catalog: Catalog, *, framework: str | None, python: str | None, accelerator: str) -> str:
    """One line for the ``base_image`` question's help: where the menu comes from and why the default."""
    best = default_choice(catalog.choices, framework=framework, python=python, accelerator=accelerator)
    if best is None:
        return f"Curated base image (from {catalog.source})"
    head = f"Curated base image (from {catalog.source}); default {best.tag}"
    if not catalog.fleet:
        return f"{head}: the newest CUDA (the plan lists no fleet nodes)"
    rivals = [
        c
        for c in fits(catalog.choices, framework=framework, python=python, accelerator=accelerator)
        if c is not best
        and c.variant == best.variant
        and c.framework == best.framework
        and c.cuda != best.cuda
    ]
    others = ", ".join(f"cu{c.cuda} image: {len(c.nodes)}" for c in rivals)
    coverage = f"runs on {len(best.nodes)} of {len(catalog.fleet)} fleet nodes"
    return f"{head}: {coverage}" + (f" ({others})" if others else "")


def check_image(catalog: Catalog, value: str, *, recorded: bool) -> None:
    """Refuse a ``base_image`` the plan does not know, naming the closest known tags.

    A ``recorded`` answer (replayed by ``copier update``) may be a tag a newer plan has retired: it
    stays valid while it names one of the plan's repositories, so an update never moves a project's
    base image behind its back. A value the user gives must be a tag or alias of the plan.
    """
    known = catalog.known()
    if not value or value in known:
        return
    if recorded and _same_repository(value, list(known)):
        return
    raise UsageError(
        f"{value!r} is not a curated image of {catalog.source}",
        where="base_image",
        hint=f"closest known: {', '.join(closest(value, list(known)))}",
    )


def check_python(catalog: Catalog, value: str, *, recorded: bool) -> None:
    """Refuse a ``python_version`` no curated image ships (a recorded one replays as long as it is a version)."""
    versions = python_versions(catalog.choices, framework=None)
    if not value or value in versions:
        return
    if recorded and python_key(value)[0]:
        return
    raise UsageError(
        f"no curated image of {catalog.source} ships Python {value!r}",
        where="python_version",
        hint=f"known: {', '.join(versions)}",
    )


def closest(value: str, names: Sequence[str], n: int = SUGGESTIONS) -> list[str]:
    """The known names most like ``value``, never none (a typo and a wrong registry both get an answer)."""
    near = difflib.get_close_matches(value, names, n=n, cutoff=0.5)
    if near:
        return near
    # Another registry or a bare name: compare what follows the last slash ("torch:2.13-runtime").
    by_tail: dict[str, str] = {}
    for name in names:
        by_tail.setdefault(name.rpartition("/")[2], name)
    tails = difflib.get_close_matches(value.rpartition("/")[2], list(by_tail), n=n, cutoff=0.0)
    return [by_tail[tail] for tail in tails]


def _same_repository(tag: str, tags: Sequence[str]) -> bool:
    repo = repository_of(tag)
    return any(repository_of(t) == repo for t in tags)
