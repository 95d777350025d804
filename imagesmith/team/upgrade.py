"""``imagesmith upgrade``: move a team's repository to the installed imagesmith, saying first what changes.

What moves: the pin (``imagesmith-version``) and with it the immutable tags' release (``-rN``), because the
images will carry another imagesmith; the team's files from the newer team-repository template (copier's
update: the team's edits kept, conflicts marked inline); the image set, re-planned with the new knowledge.
``plan_upgrade`` is pure apart from reading the repository and preparing the template versions; ``apply``
writes.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

from imagesmith import __version__
from imagesmith.contract import paths, plan_json, requirement
from imagesmith.errors import UsageError


@dataclass(frozen=True, kw_only=True)
class TagMove:
    image: str
    old: str
    new: str


@dataclass(frozen=True, kw_only=True)
class UpgradeReport:
    root: Path
    old_version: str
    new_version: str
    old_release: int
    new_release: int
    template_version: str  # the team-repository template the repository is at (its answers' _commit)
    added: tuple[str, ...]  # image names
    removed: tuple[str, ...]
    moved: tuple[TagMove, ...]
    coverage_before: dict[str, tuple[str, ...]]  # fleet node -> the framework lines it has an image for
    coverage_after: dict[str, tuple[str, ...]]
    uncovered_after: tuple[str, ...]
    template_changes: tuple[str, ...]  # "M templates/base/Dockerfile.jinja" (git's status letters)

    @property
    def changes(self) -> bool:
        return bool(
            self.old_version != self.new_version
            or self.added
            or self.removed
            or self.moved
            or self.template_changes
            or self.coverage_before != self.coverage_after
        )

    def lines(self) -> list[str]:
        out = [f"imagesmith {self.old_version} -> {self.new_version} ({paths.POLICY}: {requirement.KEY})"]
        if self.old_release != self.new_release:
            out.append(
                f"release {self.old_release} -> {self.new_release}: every immutable tag moves "
                f"(-r{self.new_release}); rolling aliases move to the new images"
            )
        out += [f"  + image {name}" for name in self.added]
        out += [f"  - image {name}" for name in self.removed]
        out += [f"  ~ tag {m.old} -> {m.new}" for m in self.moved]
        nodes = sorted(set(self.coverage_before) | set(self.coverage_after))
        for node in nodes:
            before = ", ".join(self.coverage_before.get(node, ())) or "nothing"
            after = ", ".join(self.coverage_after.get(node, ())) or "nothing"
            mark = "  " if before == after else "! "
            out.append(f"{mark}fleet {node}: {before}" + ("" if before == after else f" -> {after}"))
        out += [f"  NOT COVERED after the upgrade: {line}" for line in self.uncovered_after]
        if self.template_changes:
            out.append(f"project templates: {len(self.template_changes)} file(s) change")
            out += [f"  {line}" for line in self.template_changes]
        else:
            out.append("project templates: unchanged")
        return out


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)


def read_answers(root: Path) -> dict[str, object]:
    path = root / paths.TEAM_ANSWERS
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(
            f"not a team repository made by `imagesmith init` (no {paths.TEAM_ANSWERS})",
            where=str(root),
            hint="run `imagesmith init --adopt` there first",
        ) from None
    except yaml.YAMLError as exc:
        raise UsageError(f"unreadable answers file: {str(exc).splitlines()[0]}", where=str(path)) from None
    if not isinstance(data, dict) or not str(data.get("_commit", "")).startswith("v"):
        raise UsageError("the answers file names no template version (_commit)", where=str(path))
    return data


def with_pin(text: str, version: str, release: int) -> str:
    """The policy text with ``imagesmith-version`` and ``release`` moved, everything else as the team wrote it."""
    text, count = re.subn(
        rf"^{re.escape(requirement.KEY)}\s*:.*$", f'{requirement.KEY}: "{version}"', text, count=1, flags=re.M
    )
    if count == 0:
        raise UsageError(f"no {requirement.KEY} to move", where=paths.POLICY)
    text, count = re.subn(r"^release\s*:\s*[0-9]+", f"release: {release}", text, count=1, flags=re.M)
    if count == 0:
        text = re.sub(
            rf"^({re.escape(requirement.KEY)}\s*:.*)$", rf"\1\nrelease: {release}", text, count=1, flags=re.M
        )
    return text


def _coverage(images: list[tuple[str | None, tuple[str, ...]]]) -> dict[str, tuple[str, ...]]:
    out: dict[str, set[str]] = {}
    for line, nodes in images:
        if line is None:
            continue
        for node in nodes:
            out.setdefault(node, set()).add(line)
    return {node: tuple(sorted(lines)) for node, lines in sorted(out.items())}


def plan_upgrade(root: Path) -> tuple[UpgradeReport, str]:
    """What moving ``root`` to this imagesmith changes, and the new policy text; writes nothing in ``root``."""
    from imagesmith.images.plan import make_plan
    from imagesmith.images.policy import parse_policy
    from imagesmith.images.yamlpos import load_text
    from imagesmith.matrix import knowledge
    from imagesmith.team import template_repo

    policy_path = root / paths.POLICY
    if not policy_path.is_file():
        raise UsageError(f"no {paths.POLICY} here: run upgrade in the team's repository", where=str(root))
    answers = read_answers(root)
    text = policy_path.read_text(encoding="utf-8")
    kb = knowledge.load()
    current = parse_policy(load_text(text, str(policy_path)), kb)
    if current.imagesmith_version is None:
        raise UsageError(
            f"the policy pins no {requirement.KEY}",
            where=str(policy_path),
            hint="run `imagesmith init --adopt`",
        )
    from packaging.version import Version

    old, new = current.imagesmith_version, __version__
    if Version(new) < Version(old):
        raise UsageError(
            f"installed imagesmith {new} is older than the {old} this repository is made for; nothing done",
            where=str(policy_path),
            hint=f"pip install '{requirement.requirement(Version(old))}'",
        )
    template_old = str(answers["_commit"])[1:]
    release = current.release + 1 if old != new else current.release
    new_text = with_pin(text, new, release)
    new_policy = parse_policy(load_text(new_text, str(policy_path)), kb)
    new_plan = make_plan(kb, new_policy)

    plan_path = root / paths.PLAN_JSON
    before = plan_json.load(plan_path, check_files=False).images if plan_path.is_file() else ()
    old_tags = {image.name: image.tag for image in before}
    new_tags = {image.name: image.tag for image in new_plan.images}
    moved = tuple(
        TagMove(image=name, old=old_tags[name], new=tag)
        for name, tag in new_tags.items()
        if name in old_tags and old_tags[name] != tag
    )
    lines_before = [(image.framework.name if image.framework else None, image.nodes) for image in before]
    lines_after = [(image.framework, image.nodes) for image in new_plan.images]

    # Both template versions, in the git repository copier updates from.
    if not template_repo.has_version(template_old):
        if template_old == new:
            template_repo.add_current(new)
        else:
            template_repo.add_from_release(template_old)
    if template_old != new:
        template_repo.add_current(new)
    changes = template_repo.changed_project_files(template_old, new) if template_old != new else []
    report = UpgradeReport(
        root=root,
        old_version=old,
        new_version=new,
        old_release=current.release,
        new_release=release,
        template_version=template_old,
        added=tuple(n for n in new_tags if n not in old_tags),
        removed=tuple(n for n in old_tags if n not in new_tags),
        moved=moved,
        coverage_before=_coverage(lines_before),
        coverage_after=_coverage(lines_after),
        uncovered_after=tuple(f"{d.subject}: {d.reason}" for d in new_plan.uncovered),
        template_changes=tuple(changes),
    )
    return report, new_text


def check_clean(root: Path) -> None:
    """copier's update merges through git: the repository must be committed first (and nothing is lost)."""
    done = _git(root, "status", "--porcelain")
    if done.returncode != 0:
        raise UsageError("not a git repository: commit the team's repository first", where=str(root))
    dirty = [line[3:] for line in done.stdout.splitlines() if line.strip()]
    if dirty:
        shown = ", ".join(dirty[:3]) + (f" and {len(dirty) - 3} more" if len(dirty) > 3 else "")
        raise UsageError(
            f"uncommitted changes ({shown}); nothing done", where=str(root), hint="commit or stash them first"
        )


@dataclass(frozen=True, kw_only=True)
class Applied:
    conflicts: tuple[str, ...]  # files with inline conflict markers
    rendered: int
    unlocked: tuple[str, ...]  # images without a current lock: `imagesmith images lock`


def apply(report: UpgradeReport, new_text: str) -> Applied:
    """Update the team's files from the newer template, move the pin, re-render the images."""
    from imagesmith.team import template_repo

    root = report.root
    if report.template_version != report.new_version:
        template_repo.update(root, version=report.new_version, answers_file=paths.TEAM_ANSWERS)
    (root / paths.POLICY).write_text(new_text, encoding="utf-8")
    from imagesmith.team.init import render_repository

    summary = render_repository(root, allow_uncovered=True)
    conflicts = _git(root, "diff", "--name-only", "-G", "^<<<<<<< ").stdout.split()
    return Applied(conflicts=tuple(conflicts), rendered=summary.files, unlocked=summary.unlocked)
