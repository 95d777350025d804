"""`imagesmith upgrade` between two real releases (wheels of this checkout, fresh venvs, a fresh HOME): what it
says before writing, the team's edits kept, a conflicting edit marked inline and named, nothing written by
--check. The docker-side of the same path (images rebuilt under new tags, projects updated) is
tests/golden/test_adoption_docker.py."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.team import kit
from tests.templates.templates_kit import commit_all, git

SMALL = ("--framework", "cuda==12.9", "--variant", "runtime", "--node", "name=l4,driver=575.57.08,gpu=L4")


def test_upgrade_keeps_the_teams_edits_and_marks_a_conflict(tmp_path: Path, wheels: dict[str, Path]) -> None:
    version = kit.current_version()
    env = kit.machine_env(tmp_path / "home", wheels[version].parent)
    v1 = kit.make_venv(tmp_path / "v1", f"imagesmith=={version}", env)
    v2 = kit.make_venv(tmp_path / "v2", f"imagesmith=={kit.NEXT}", env)
    assert v1.run("imagesmith", "init", "team", *SMALL, cwd=tmp_path).returncode == 0
    team = tmp_path / "team"
    git(team, "init", "-q", "-b", "main")
    commit_all(team, "team repository")
    # Two edits: one the next release does not touch, one on the very lines it changes.
    readme = team / "templates" / "base" / "README.md.jinja"
    readme.write_text(readme.read_text() + "\nOur on-call: #ml-platform\n")
    ignore = team / "templates" / "base" / "dockerignore.jinja"
    ignore.write_text(ignore.read_text() + "# our own ignore rule\n*.parquet\n")
    (team / "projects.yaml").write_text("projects:\n  - url: file:///srv/git/churn.git\n")
    commit_all(team, "our edits")

    dirty = team / "notes.txt"
    dirty.write_text("wip\n")
    refused = v2.run("imagesmith", "upgrade", cwd=team)
    assert refused.returncode == 2 and "uncommitted changes (notes.txt); nothing done" in refused.stderr
    dirty.unlink()

    check = v2.run("imagesmith", "upgrade", "--check", cwd=team)
    assert check.returncode == 1, check.stdout + check.stderr
    assert (
        check.stdout.splitlines()[0]
        == f"imagesmith {version} -> {kit.NEXT} (imagesmith.yaml: imagesmith-version)"
    )
    assert "release 1 -> 2" in check.stdout and "  fleet l4: cuda" in check.stdout
    assert "  M templates/base/dockerignore.jinja" in check.stdout
    assert git(team, "status", "--porcelain") == ""

    upgraded = v2.run("imagesmith", "upgrade", cwd=team)
    assert upgraded.returncode == 0, upgraded.stdout + upgraded.stderr
    assert "CONFLICT (inline markers): templates/base/dockerignore.jinja" in upgraded.stdout
    text = ignore.read_text()
    assert "<<<<<<< " in text and "*.parquet" in text and kit.NEXT_DOCKERIGNORE_LINE in text
    assert "Our on-call: #ml-platform" in readme.read_text()  # an edit the release does not touch: kept
    assert (team / "projects.yaml").read_text() == "projects:\n  - url: file:///srv/git/churn.git\n"
    policy = yaml.safe_load((team / "imagesmith.yaml").read_text())
    assert (policy["imagesmith-version"], policy["release"]) == (kit.NEXT, 2)
    answers = yaml.safe_load((team / ".imagesmith" / "team-answers.yml").read_text())
    assert answers["_commit"] == f"v{kit.NEXT}"
    # The older imagesmith is now refused here, the newer one finds nothing left to do.
    assert v1.run("imagesmith", "images", "plan", cwd=team).returncode == 3
    commit_all(team, "imagesmith upgrade")
    again = v2.run("imagesmith", "upgrade", cwd=team)
    assert again.returncode == 0 and "nothing written" in again.stdout, again.stdout + again.stderr
