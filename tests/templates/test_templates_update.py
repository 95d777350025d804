"""`copier update` from tag v1 to v2 (see conftest.make_v2) on projects with user edits: real git, real tags."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.templates.templates_kit import (
    TYPES,
    VENV_BIN,
    answers,
    commit_all,
    git,
    run_tool,
    start_project,
    status,
    update,
)

USER_FUNCTION = '\n\ndef double(x: float) -> float:\n    """Added by the user."""\n    return 2 * x\n'
USER_README = "\n## Our notes\n\nRun the nightly job by hand with `make nightly`.\n"
USER_DOCKER_LINE = 'LABEL team="vision"\n'
USER_CI_STEP = "      - run: echo user-step-kept\n"


def edit_like_a_user(project: Path) -> None:
    with (project / "src/my_project/core.py").open("a", encoding="utf-8") as f:
        f.write(USER_FUNCTION)
    with (project / "README.md").open("a", encoding="utf-8") as f:
        f.write(USER_README)
    with (project / "Dockerfile").open("a", encoding="utf-8") as f:
        f.write(USER_DOCKER_LINE)
    with (project / ".github/workflows/ci.yml").open("a", encoding="utf-8") as f:
        f.write(USER_CI_STEP)
    (project / "src/my_project/extra.py").write_text("VALUE = 1\n", encoding="utf-8")
    commit_all(project, "user edits")


@pytest.mark.parametrize("kind", TYPES)
def test_update_keeps_user_edits_and_brings_template_changes(
    template_repo: Path, tmp_path: Path, kind: str
) -> None:
    project = start_project(template_repo, tmp_path / "p", ref="v1", project_type=kind)
    edit_like_a_user(project)
    user_core = (project / "src/my_project/core.py").read_text(encoding="utf-8")

    update(project)

    # The renamed file is the only one copier 3-way merges without a base (see docs/templates.md):
    # the user's step comes back as a small conflict to confirm, never silently dropped.
    unmerged = {line.split("\t")[1] for line in git(project, "ls-files", "-u").splitlines()}
    assert unmerged <= {".github/workflows/checks.yml"}
    assert not list(project.rglob("*.rej"))
    recorded = answers(project)
    assert recorded["_commit"] == "v2"
    assert recorded["log_level"] == "INFO"  # the new question took its default
    # User-owned files are untouched; the user's new file is kept.
    assert (project / "src/my_project/core.py").read_text(encoding="utf-8") == user_core
    assert (project / "README.md").read_text(encoding="utf-8").endswith(USER_README)
    assert (project / "src/my_project/extra.py").exists()
    # A template-owned file: the base change arrived and the user's line survived.
    dockerfile = (project / "Dockerfile").read_text(encoding="utf-8")
    assert 'LABEL org.opencontainers.image.title="My Project"' in dockerfile
    assert "LOG_LEVEL=INFO" in dockerfile
    assert "--no-compile" in dockerfile
    assert dockerfile.endswith(USER_DOCKER_LINE)
    # The migration renamed ci.yml and the user's step followed the file.
    assert not (project / ".github/workflows/ci.yml").exists()
    checks = (project / ".github/workflows/checks.yml").read_text(encoding="utf-8")
    assert USER_CI_STEP in checks
    conflicts = checks.split("<<<<<<< ")[1:]
    assert all(USER_CI_STEP in c or "=======\n>>>>>>>" in c for c in conflicts), checks
    if kind == "batch":
        assert "activeDeadlineSeconds: 86400" in (project / "deploy/k8s/job.yaml").read_text(encoding="utf-8")
        assert "activeDeadlineSeconds" not in (project / "deploy/k8s/cronjob.yaml").read_text(
            encoding="utf-8"
        )


def test_conflicting_edit_leaves_inline_markers_and_an_unmerged_index(
    template_repo: Path, tmp_path: Path
) -> None:
    project = start_project(template_repo, tmp_path / "p", ref="v1", project_type="library")
    dockerfile = project / "Dockerfile"
    text = dockerfile.read_text(encoding="utf-8")
    template_line = '    && python -m imagesmith.guard pip install --no-cache-dir ".${PROJECT_EXTRAS}" \\\n'
    user_line = '    && python -m imagesmith.guard pip install --no-cache-dir --require-hashes ".${PROJECT_EXTRAS}" \\\n'
    assert template_line in text
    dockerfile.write_text(text.replace(template_line, user_line))
    commit_all(project, "user pins hashes")

    update(project)

    merged = dockerfile.read_text(encoding="utf-8")
    assert "<<<<<<< before updating" in merged
    assert ">>>>>>> after updating" in merged
    assert user_line in merged
    assert (
        '    && python -m imagesmith.guard pip install --no-cache-dir --no-compile ".${PROJECT_EXTRAS}" \\\n'
        in merged
    )
    unmerged = git(project, "ls-files", "-u")
    assert "Dockerfile" in unmerged
    assert {line.split()[2] for line in unmerged.splitlines()} == {"1", "2", "3"}
    assert "UU Dockerfile" in status(project)
    assert "LOG_LEVEL=INFO" in merged  # the rest of the file merged cleanly


@pytest.mark.parametrize("ref", [":current:", None])
def test_no_op_update_changes_nothing(template_repo: Path, tmp_path: Path, ref: str | None) -> None:
    project = start_project(template_repo, tmp_path / "p", ref="v2", project_type="batch")
    head = git(project, "rev-parse", "HEAD")
    update(project, ref=ref)
    assert status(project) == ""
    assert git(project, "rev-parse", "HEAD") == head
    assert answers(project)["_commit"] == "v2"


def test_dirty_project_is_refused_with_a_clear_message(template_repo: Path, tmp_path: Path) -> None:
    project = start_project(template_repo, tmp_path / "p", ref="v1", project_type="service")
    (project / "src/my_project/core.py").write_text("# half-done edit\n", encoding="utf-8")
    before = status(project)
    done = run_tool([str(VENV_BIN / "copier"), "update", "--trust", "--defaults"], project)
    assert done.returncode != 0
    message = (done.stdout + done.stderr).strip()
    assert "Destination repository is dirty" in message
    assert "Traceback" not in message
    assert status(project) == before
    assert answers(project)["_commit"] == "v1"


def test_switching_project_type_keeps_user_code(template_repo: Path, tmp_path: Path) -> None:
    project = start_project(template_repo, tmp_path / "p", ref="v2", project_type="library")
    with (project / "src/my_project/core.py").open("a", encoding="utf-8") as f:
        f.write(USER_FUNCTION)
    (project / "src/my_project/extra.py").write_text("VALUE = 1\n", encoding="utf-8")
    commit_all(project, "user code")
    user_core = (project / "src/my_project/core.py").read_text(encoding="utf-8")

    update(project, ref=":current:", project_type="service")

    assert git(project, "ls-files", "-u") == ""
    recorded = answers(project)
    assert recorded["project_type"] == "service"
    assert recorded["instance_type"] == "auto"  # the resource questions were asked with their defaults
    assert (project / "src/my_project/core.py").read_text(encoding="utf-8") == user_core
    assert (project / "src/my_project/extra.py").exists()
    for name in ("src/my_project/app.py", "deploy/k8s/deployment.yaml", "tests/test_app.py"):
        assert (project / name).exists(), name
    assert not (project / ".github/workflows/publish.yml").exists()
    assert "EXPOSE 8080" in (project / "Dockerfile").read_text(encoding="utf-8")


@pytest.mark.slow
def test_updated_project_still_passes_its_own_checks(template_repo: Path, tmp_path: Path) -> None:
    project = start_project(template_repo, tmp_path / "p", ref="v1", project_type="service")
    edit_like_a_user(project)
    update(project)
    for args in (
        [str(VENV_BIN / "ruff"), "check", "--no-cache", "."],
        [str(VENV_BIN / "mypy"), "--cache-dir", "/dev/null"],
        [str(VENV_BIN / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        [str(VENV_BIN / "hadolint"), "Dockerfile"],
    ):
        done = run_tool(args, project)
        assert done.returncode == 0, f"{' '.join(args[:2])}:\n{done.stdout}{done.stderr}"


def _selected(project: Path) -> tuple[str, str]:
    import yaml

    text = (project / "deploy/k8s/job.yaml").read_text(encoding="utf-8")
    doc = yaml.safe_load(text)
    spec = doc["spec"]["template"]["spec"]
    return spec["nodeSelector"]["node.kubernetes.io/instance-type"], text.splitlines()[1]


def test_update_with_new_resources_repicks_and_a_pin_is_kept_with_a_warning(
    template_repo: Path, tmp_path: Path
) -> None:
    from imagesmith.picker import catalog
    from imagesmith.picker.allocatable import DEFAULT_HEADROOM, offer, parse_headroom

    project = start_project(template_repo, tmp_path / "p", ref="v1", project_type="batch")
    before, _ = _selected(project)

    update(project, ref=":current:", cpus=8, memory_gb=32)
    after, header = _selected(project)
    assert after != before and answers(project)["instance_type"] == "auto"
    assert "for 8 CPUs, 32 GiB" in header and f"Instance type {after} picked" in header
    row = next(r for r in catalog.load().rows if r.instance_type == after and r.cloud == "aws")
    node = offer(row, parse_headroom(DEFAULT_HEADROOM))
    assert node is not None and node.cpus >= 8 and node.memory_gib >= 32
    commit_all(project, "8 CPUs")

    # A pinned type is the user's: kept on update, with a warning (and a header) saying it no longer fits.
    copier = str(VENV_BIN / "copier")
    base = [
        copier,
        "update",
        "--trust",
        "--defaults",
        "--vcs-ref=:current:",
        "--data=instance_type=g6.xlarge",
    ]
    done = run_tool(base, project)
    assert done.returncode == 0, done.stderr
    assert "does NOT fit" in done.stderr and "g6.xlarge" in done.stderr and "Traceback" not in done.stderr
    pinned, header = _selected(project)
    assert pinned == "g6.xlarge" and answers(project)["instance_type"] == "g6.xlarge"
    assert "pinned by the instance_type answer does NOT fit 8 CPUs" in header and "cpus 8+" in header
    commit_all(project, "pin")

    # Back within what the pin offers: no warning, the header says it fits.
    done = run_tool([*base, "--data=cpus=2", "--data=memory_gb=8"], project)
    assert done.returncode == 0 and "does NOT fit" not in done.stderr, done.stderr
    pinned, header = _selected(project)
    assert pinned == "g6.xlarge" and "pinned by the instance_type answer; it fits 2 CPUs, 8 GiB" in header
    commit_all(project, "smaller")

    # A pin the catalog does not know is one line naming it, and nothing is rewritten.
    status_before = status(project)
    done = run_tool([*base[:-1], "--data=instance_type=g6.xlarj"], project)
    message = (done.stdout + done.stderr).strip()
    assert done.returncode != 0 and "g6.xlarj" in message and "Traceback" not in message
    assert status(project) == status_before
