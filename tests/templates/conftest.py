"""Fixtures for the template tests: a temporary clone of this repository's templates tagged v1 and v2."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.templates.templates_kit import GIT_ENV, clone_template, commit_all, git

# v2 of the template, as a release would change it: a shared base file, a type-only file, a new
# question with a default, and a file rename shipped with a version-gated migration.
V2_MIGRATION = """_migrations:
  - version: v2
    when: "{{ _stage == 'before' }}"
    command: ["{{ _copier_python }}", "-m", "imagesmith.templating.migrate", "rename",
              ".github/workflows/ci.yml", ".github/workflows/checks.yml"]
"""
V2_QUESTION = """
log_level:
  type: str
  help: Log level of the container
  choices: [DEBUG, INFO, WARNING]
  default: INFO
"""


def make_v2(template: Path) -> None:
    config = template / "copier.yml"
    text = config.read_text(encoding="utf-8")
    assert "_migrations: []\n" in text
    config.write_text(text.replace("_migrations: []\n", V2_MIGRATION) + V2_QUESTION, encoding="utf-8")

    dockerfile = template / "templates/base/Dockerfile.jinja"
    text = dockerfile.read_text(encoding="utf-8")
    for old, new in [
        (
            "FROM ${BASE_IMAGE} AS app\n",
            'FROM ${BASE_IMAGE} AS app\nLABEL org.opencontainers.image.title="{{ project_name }}"\n',
        ),
        ("    IMAGESMITH_PREFLIGHT=", "    LOG_LEVEL={{ log_level }} \\\n    IMAGESMITH_PREFLIGHT="),
        (
            '    && python -m imagesmith.guard pip install --no-cache-dir ".${PROJECT_EXTRAS}" \\\n',
            '    && python -m imagesmith.guard pip install --no-cache-dir --no-compile ".${PROJECT_EXTRAS}" \\\n',
        ),
    ]:
        assert old in text, old
        text = text.replace(old, new)
    dockerfile.write_text(text, encoding="utf-8")

    job = template / "templates/base/k8s/job.yaml.jinja"
    text = job.read_text(encoding="utf-8")
    assert "  backoffLimit: 3\n" in text
    job.write_text(text.replace("  backoffLimit: 3\n", "  backoffLimit: 3\n  activeDeadlineSeconds: 86400\n"))

    for kind in ("library", "batch", "service"):
        workflows = template / "templates" / kind / ".github/workflows"
        git(template, "mv", str(workflows / "ci.yml.jinja"), str(workflows / "checks.yml.jinja"))


@pytest.fixture(scope="session", autouse=True)
def git_identity() -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in GIT_ENV}
    os.environ.update(GIT_ENV)
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def template_repo(tmp_path_factory: pytest.TempPathFactory, git_identity: None) -> Path:
    """Tags: v1 is this checkout's templates as they are; v2 is v1 plus the changes in ``make_v2``."""
    template = clone_template(tmp_path_factory.mktemp("tpl") / "imagesmith-templates")
    git(template, "tag", "v1")
    make_v2(template)
    commit_all(template, "v2: label, log level, job deadline, ci.yml renamed to checks.yml")
    git(template, "tag", "v2")
    return template
