"""``imagesmith init``: the team's platform repository, from the template shipped in the wheel.

Pure parts first (the answers, the policy text), then the one edge: copier copies the team-repository template
(``template_repo``), the policy is written, the plan rendered.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from imagesmith import __version__
from imagesmith.contract import paths, requirement
from imagesmith.errors import UsageError

_FRAMEWORK = re.compile(r"(?P<name>[a-z]+)\s*(?P<spec>.*)")


@dataclass(frozen=True, kw_only=True)
class FleetEntry:
    name: str
    driver: str
    gpu: str
    count: int = 1


@dataclass(frozen=True, kw_only=True)
class InitOptions:
    """``imagesmith init``'s answers, declared once (the click command maps its flags onto them)."""

    directory: Path
    team_name: str
    registry: str
    maintainer: str
    vendor: str
    pythons: tuple[str, ...]
    frameworks: tuple[tuple[str, str], ...]  # (framework, specifier), in the order given
    fleet: tuple[FleetEntry, ...]
    variants: tuple[str, ...] = ("runtime", "devel")
    adopt: bool = False


def parse_framework(text: str) -> tuple[str, str]:
    """``torch~=2.13.0``, ``jax>=0.10,<0.11``, ``cuda==12.9`` (a CUDA-runtime-only line) -> (name, specifier)."""
    match = _FRAMEWORK.fullmatch(text.strip())
    if match is None or not match["spec"].strip():
        raise UsageError(
            "expected a framework and a version specifier, like torch~=2.13.0 or cuda==12.9",
            where=f"--framework {text}",
        )
    name, spec = match["name"], match["spec"].strip()
    if name == "cuda":
        spec = spec.lstrip("=").strip()
    return name, spec


def parse_node(text: str) -> FleetEntry:
    """``name=p5-h100,driver=580.82.07,gpu=H100[,count=4]``."""
    fields: dict[str, str] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep or not value.strip() or key.strip() not in ("name", "driver", "gpu", "count"):
            raise UsageError("expected name=NAME,driver=VERSION,gpu=GPU[,count=N]", where=f"--node {text}")
        fields[key.strip()] = value.strip()
    missing = [k for k in ("name", "driver", "gpu") if k not in fields]
    if missing:
        raise UsageError(f"missing {', '.join(missing)}", where=f"--node {text}")
    try:
        count = int(fields.get("count", "1"))
    except ValueError:
        raise UsageError("count must be a whole number", where=f"--node {text}") from None
    return FleetEntry(name=fields["name"], driver=fields["driver"], gpu=fields["gpu"], count=count)


def _flow(value: object) -> str:
    """One-line YAML for ``value`` (a JSON string for scalars: YAML would end a lone scalar with '...')."""
    if isinstance(value, str):
        import json

        return json.dumps(value)
    return yaml.safe_dump(value, default_flow_style=True, width=100_000, sort_keys=False).strip()


def policy_text(options: InitOptions, *, bases: dict[str, dict[str, str]]) -> str:
    """The team's ``imagesmith.yaml``: pinned to this imagesmith, release 1, the given answers."""
    lines = [
        f"# {paths.POLICY}: the {options.team_name} team's curated base-image policy.",
        "# `imagesmith images plan --explain` shows what it produces and why; docs: "
        "https://pypi.org/project/imagesmith/",
        "schema: 1",
        "# The imagesmith release this repository is made for: CI installs exactly it, the images carry it,",
        "# and every command here refuses another release line. `imagesmith upgrade` moves it.",
        f'{requirement.KEY}: "{__version__}"',
        "# The immutable tags' moving part (-r1, -r2, ...): `imagesmith upgrade` raises it with the imagesmith",
        "# release; raise it yourself to publish a rebuild of unchanged inputs (an OS security refresh).",
        "release: 1",
        f"registry: {_flow(options.registry)}",
        f"maintainer: {_flow(options.maintainer)}",
        f"vendor: {_flow(options.vendor)}",
        "",
        "# OS bases: the image each one starts FROM and the Python its distribution ships.",
        "bases:",
    ]
    for base_name, base_spec in bases.items():
        lines.append(f"  {base_name}: {_flow(base_spec)}")
    lines += [
        "",
        "# Python versions to build for; each must be provided by a base above.",
        f"pythons: {_flow(list(options.pythons))}",
        "# runtime = the framework and its CUDA wheels; devel = runtime + compilers + nvcc.",
        f"variants: {_flow(list(options.variants))}",
        "",
        "# Framework lines: each PEP 440 specifier selects the newest known release it admits;",
        "# `cuda` lines are CUDA-runtime-only images.",
        "frameworks:",
    ]
    grouped: dict[str, list[str]] = {}
    for name, spec in options.frameworks:
        grouped.setdefault(name, []).append(spec)
    for name, specs in grouped.items():
        lines.append(f"  {name}: {_flow(specs)}")
    lines += ["", "# The fleet: every node type the team runs (driver x GPU).", "fleet:"]
    for node in options.fleet:
        entry: dict[str, object] = {"name": node.name, "driver": node.driver, "gpu": node.gpu}
        if node.count != 1:
            entry["count"] = node.count
        lines.append(f"  - {_flow(entry)}")
    return "\n".join(lines) + "\n"


def adopt_policy_text(text: str) -> str:
    """An existing policy pinned to this imagesmith: the pin added (with release 1) or left as it is."""
    if re.search(rf"^{re.escape(requirement.KEY)}\s*:", text, re.MULTILINE):
        return text
    head = f'{requirement.KEY}: "{__version__}"\n'
    if not re.search(r"^release\s*:", text, re.MULTILINE):
        head += "release: 1\n"
    match = re.search(r"^schema\s*:.*\n", text, re.MULTILINE)
    if match:
        return text[: match.end()] + head + text[match.end() :]
    return head + text


@dataclass(frozen=True, kw_only=True)
class InitResult:
    directory: Path
    written: tuple[str, ...]  # what init wrote, relative to the directory
    rendered: int  # files `images render` wrote (0 when the plan could not be rendered)
    uncovered: tuple[str, ...]  # fleet node x framework line pairs without an image


# What the team-repository template writes; with --adopt these must not be there already (they are not the
# team's policy, and copying over them would lose a fork's edits without a word).
TEMPLATE_OWNED = ("copier.yml", "templates", paths.TEAM_ANSWERS)


def check_directory(directory: Path, *, adopt: bool) -> None:
    if directory.exists() and not directory.is_dir():
        raise UsageError("exists and is not a directory", where=str(directory))
    entries = sorted(p.name for p in directory.iterdir()) if directory.is_dir() else []
    entries = [e for e in entries if e != ".git"]
    if not adopt:
        if entries:
            shown = ", ".join(entries[:4]) + (f" and {len(entries) - 4} more" if len(entries) > 4 else "")
            raise UsageError(
                f"not empty ({shown}); nothing written",
                where=str(directory),
                hint=f"init into a new directory, or pass --adopt to adopt the {paths.POLICY} there",
            )
        return
    if not (directory / paths.POLICY).is_file():
        raise UsageError(
            f"--adopt needs an existing {paths.POLICY} here; nothing written", where=str(directory)
        )
    present = [name for name in TEMPLATE_OWNED if (directory / name).exists()]
    if present:
        raise UsageError(
            f"already has {', '.join(present)}, which init would replace; nothing written",
            where=str(directory),
            hint="move them away (the project templates come from imagesmith), then run init --adopt again",
        )


def run_init(options: InitOptions) -> InitResult:
    """Write the team's repository into ``options.directory``; refuses before writing anything."""
    from imagesmith.images.policy import default_policy_text, parse_policy
    from imagesmith.images.yamlpos import load_text
    from imagesmith.matrix import knowledge

    check_directory(options.directory, adopt=options.adopt)
    kb = knowledge.load()
    policy_file = options.directory / paths.POLICY
    if options.adopt:
        text = adopt_policy_text(policy_file.read_text(encoding="utf-8"))
        where = str(policy_file)
    else:
        default = yaml.safe_load(default_policy_text())
        text = policy_text(options, bases=default["bases"])
        where = f"{policy_file} (from the init answers)"
    parse_policy(load_text(text, where), kb)  # a bad answer stops here, before anything is written

    from imagesmith.team import template_repo

    template_repo.add_current(__version__)
    copied = _copy_template(options)
    policy_file.write_text(text, encoding="utf-8")
    summary = render_repository(options.directory, allow_uncovered=False)
    return InitResult(
        directory=options.directory,
        written=(*copied, paths.POLICY),
        rendered=summary.files,
        uncovered=summary.uncovered,
    )


def _copy_template(options: InitOptions) -> tuple[str, ...]:
    from imagesmith.team import template_repo

    before = set(options.directory.rglob("*")) if options.directory.is_dir() else set()
    template_repo.copy_into(
        options.directory,
        version=__version__,
        data={"team_name": options.team_name, "registry": options.registry},
    )
    after = {p for p in options.directory.rglob("*") if p.is_file()}
    top = sorted({p.relative_to(options.directory).parts[0] for p in after - before})
    return tuple(top)


@dataclass(frozen=True, kw_only=True)
class RenderSummary:
    files: int  # rendered files (0: nothing rendered)
    unlocked: tuple[str, ...]  # images without a current lock: `imagesmith images lock`
    uncovered: tuple[str, ...]  # fleet node x framework line pairs without an image


def render_repository(root: Path, *, allow_uncovered: bool) -> RenderSummary:
    """Plan and render the repository's images with the locks that still answer the policy (the others
    unlocked, named); a plan that leaves nodes uncovered is rendered only when ``allow_uncovered``."""
    from imagesmith.images import lock
    from imagesmith.images.plan import make_plan
    from imagesmith.images.policy import load_policy
    from imagesmith.images.render import render_files, write
    from imagesmith.matrix import knowledge

    kb = knowledge.load()
    plan = make_plan(kb, load_policy(root / paths.POLICY, kb))
    uncovered = tuple(f"{d.subject}: {d.reason}" for d in plan.uncovered)
    if not plan.images or (uncovered and not allow_uncovered):
        return RenderSummary(files=0, unlocked=(), uncovered=uncovered)
    states = lock.state(plan, lock.read_locks(root, plan))
    current = {s.image: s.lock for s in states if s.status == "current" and s.lock is not None}
    rendered = render_files(plan, locks=current, allow_uncovered=bool(uncovered))
    write(rendered, root)
    unlocked = tuple(s.image for s in states if s.status != "current")
    return RenderSummary(files=len(rendered.files), unlocked=unlocked, uncovered=uncovered)
