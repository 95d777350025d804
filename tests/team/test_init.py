"""`imagesmith init` and the version-skew checks, through the console script, each in a fresh HOME (no
template cache): what a team's repository holds, and every refusal as one line with its exit code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.team import kit
from tests.templates.templates_kit import commit_all, git

EXE = str(Path(sys.executable).with_name("imagesmith"))
COPIER = str(Path(sys.executable).with_name("copier"))
NODES = kit.REPO / "tests" / "fleet" / "fixtures" / "nodes.json"
SMALL = ("--framework", "cuda==12.9", "--variant", "runtime", "--node", "name=l4,driver=575.57.08,gpu=L4")


def run(*args: str, cwd: Path, home: Path, exe: str = EXE) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOME": str(home)}
    env.pop("XDG_CACHE_HOME", None)
    return subprocess.run(
        [exe, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )


def one_line_error(done: subprocess.CompletedProcess[str], code: int) -> str:
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    return lines[0]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


def test_init_makes_a_team_repository_with_no_imagesmith_source(tmp_path: Path, home: Path) -> None:
    done = run(
        "init",
        "team",
        "--registry",
        "registry.example/ml",
        "--team-name",
        "Vision",
        *SMALL,
        cwd=tmp_path,
        home=home,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    team = tmp_path / "team"
    policy = yaml.safe_load((team / "imagesmith.yaml").read_text())
    assert policy["imagesmith-version"] == kit.current_version() and policy["release"] == 1
    assert policy["frameworks"] == {"cuda": ["12.9"]} and policy["fleet"][0]["gpu"] == "L4"
    answers = yaml.safe_load((team / ".imagesmith" / "team-answers.yml").read_text())
    assert answers["_commit"] == f"v{kit.current_version()}"
    assert answers["_src_path"] == "~/.cache/imagesmith/team-template"  # the same on every machine
    assert "Vision" in (team / "README.md").read_text()
    # The rendered CI is where GitHub looks, installs exactly the pinned release, never `pip install .`.
    workflow = (team / ".github" / "workflows" / "images.yml").read_text()
    assert f'python -m pip install "imagesmith=={kit.current_version()}"' in workflow
    assert "pip install ." not in workflow and "--imagesmith-wheel" not in workflow
    # The project templates are the package's, byte for byte.
    shipped = kit.REPO / "imagesmith" / "team" / "template" / "repo"
    for path in (shipped / "templates").rglob("*"):
        if path.is_file():
            assert (team / path.relative_to(shipped)).read_bytes() == path.read_bytes(), path
    git(team, "init", "-q", "-b", "main")
    commit_all(team, "team repository")
    files = git(team, "ls-files").split()
    assert not [f for f in files if f.endswith(".py") or f.startswith(("imagesmith/", "tests/", "bench/"))], (
        files
    )
    assert {"imagesmith.yaml", "copier.yml", "projects.yaml", "README.md", "docker-bake.json"} <= set(files)
    # Every tag carries the release part; the images carry the pinned imagesmith.
    plan = yaml.safe_load((team / "base_images" / "plan.json").read_text())
    assert plan["imagesmith_release"] == kit.current_version()
    assert all(image["tag"].endswith("-r1") for image in plan["images"])
    assert all(image["labels"]["io.imagesmith.version"] == kit.current_version() for image in plan["images"])
    # Nothing is out of date, and an upgrade to the same imagesmith changes nothing.
    assert run("images", "render", "--check", "--allow-unlocked", cwd=team, home=home).returncode == 0
    check = run("upgrade", "--check", cwd=team, home=home)
    assert check.returncode == 0 and "up to date" in check.stdout, check.stdout + check.stderr


def test_init_reads_the_fleet_from_gpu_feature_discovery_labels(tmp_path: Path, home: Path) -> None:
    done = run("init", "team", "--nodes", str(NODES), "--framework", "torch~=2.13.0", cwd=tmp_path, home=home)
    assert done.returncode in (0, 1), done.stdout + done.stderr
    fleet = yaml.safe_load((tmp_path / "team" / "imagesmith.yaml").read_text())["fleet"]
    derived = subprocess.run(
        [EXE, "fleet", "policy", "--nodes", str(NODES), "--json"], capture_output=True, text=True, check=True
    )
    pools = yaml.safe_load(derived.stdout)["fleet"]
    assert [(n["name"], str(n["driver"]), n["gpu"]) for n in fleet] == [
        (p["name"], p["driver"], p["gpu"]) for p in pools
    ]


def test_init_refuses_a_non_empty_directory_and_writes_nothing(tmp_path: Path, home: Path) -> None:
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("ours\n")
    line = one_line_error(run("init", "busy", *SMALL, cwd=tmp_path, home=home), 2)
    assert (
        line.startswith("imagesmith: error: busy: not empty (notes.txt); nothing written")
        and "--adopt" in line
    )
    assert sorted(p.name for p in busy.iterdir()) == ["notes.txt"]
    line = one_line_error(run("init", "busy", "--adopt", cwd=tmp_path, home=home), 2)
    assert "--adopt needs an existing imagesmith.yaml" in line


def test_adopt_keeps_the_policy_and_pins_it(tmp_path: Path, home: Path) -> None:
    team = tmp_path / "team"
    team.mkdir()
    policy = (kit.REPO / "imagesmith" / "images" / "default_policy.yaml").read_text()
    (team / "imagesmith.yaml").write_text(policy)
    (team / "copier.yml").write_text("# a fork's own\n")
    line = one_line_error(run("init", "team", "--adopt", cwd=tmp_path, home=home), 2)
    assert "already has copier.yml" in line and (team / "copier.yml").read_text() == "# a fork's own\n"
    (team / "copier.yml").unlink()
    line = one_line_error(run("init", "team", "--adopt", "--registry", "x/y", cwd=tmp_path, home=home), 2)
    assert "--adopt keeps the existing imagesmith.yaml" in line
    done = run("init", "team", "--adopt", cwd=tmp_path, home=home)
    assert done.returncode == 0, done.stdout + done.stderr
    text = (team / "imagesmith.yaml").read_text()
    assert text.endswith(policy.split("schema: 1\n", 1)[1])  # the team's policy, as it was, below the pin
    assert f'imagesmith-version: "{kit.current_version()}"\nrelease: 1\n' in text
    assert (team / "templates" / "base" / "Dockerfile.jinja").is_file()


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (("--framework", "torch"), "--framework torch: expected a framework and a version specifier"),
        (("--node", "name=a,driver=575.57.08"), "--node name=a,driver=575.57.08: missing gpu"),
        (("--node", "name=a,driver=x,gpu=L4"), "(from the init answers):"),
        (("--framework", "mxnet~=1.9"), "unknown framework 'mxnet'"),
        (("--node", "name=a,driver=575.57.08,gpu=Z99"), "unknown GPU 'Z99'"),
    ],
)
def test_bad_answers_are_one_line_and_write_nothing(
    tmp_path: Path, home: Path, flags: tuple[str, ...], says: str
) -> None:
    line = one_line_error(run("init", "team", *flags, cwd=tmp_path, home=home), 2)
    assert says in line, line
    assert not (tmp_path / "team").exists() or not any((tmp_path / "team").iterdir())


def test_another_release_line_is_stopped_at_the_door(tmp_path: Path, home: Path) -> None:
    """Commands in the team's repository and `copier copy` of a project refuse an imagesmith of another
    release line than the pin, naming both versions and the command that fixes it."""
    assert run("init", "team", *SMALL, cwd=tmp_path, home=home).returncode == 0
    team = tmp_path / "team"
    policy = team / "imagesmith.yaml"
    version = kit.current_version()
    major, minor = (int(x) for x in version.split(".")[:2])
    newer = f"{major}.{minor + 1}.0"
    policy.write_text(
        policy.read_text().replace(f'imagesmith-version: "{version}"', f'imagesmith-version: "{newer}"')
    )
    line_number = next(
        i
        for i, text in enumerate(policy.read_text().splitlines(), 1)
        if text.startswith("imagesmith-version")
    )
    for command in (
        ("images", "plan"),
        ("images", "render", "--allow-unlocked"),
        ("images", "plan", "--json"),
    ):
        line = one_line_error(run(*command, cwd=team, home=home), 3)
        assert line == (
            f"imagesmith: error: imagesmith.yaml:{line_number}: installed imagesmith {version} is older than the "
            f"{newer} this repository is made for (imagesmith-version: {newer}); nothing done "
            f"(pip install 'imagesmith>={newer},<{major}.{minor + 2}')"
        ), command
    git(team, "init", "-q", "-b", "main")
    commit_all(team, "team repository pinned to the next release")
    git(team, "tag", "v1")
    copied = run(
        "copy",
        "--trust",
        "--defaults",
        "--vcs-ref=v1",
        str(team),
        str(tmp_path / "p"),
        cwd=tmp_path,
        home=home,
        exe=COPIER,
    )
    assert copied.returncode != 0 and "Traceback" not in copied.stderr, copied.stderr
    assert f"installed imagesmith {version} is older than the {newer}" in copied.stderr
    assert not (tmp_path / "p").exists()
    # An older pin: the installed imagesmith is newer, and `imagesmith upgrade` is the fix.
    policy.write_text(policy.read_text().replace(f'"{newer}"', '"0.0.1"'))
    line = one_line_error(run("images", "plan", cwd=team, home=home), 3)
    assert f"installed imagesmith {version} is newer than the 0.0.1" in line and "imagesmith upgrade" in line


def test_upgrade_refuses_uncommitted_changes(tmp_path: Path, home: Path) -> None:
    assert run("init", "team", *SMALL, cwd=tmp_path, home=home).returncode == 0
    team = tmp_path / "team"
    git(team, "init", "-q", "-b", "main")
    commit_all(team, "team repository")
    (team / "projects.yaml").write_text("projects: []  # edited\n")
    line = one_line_error(run("upgrade", cwd=team, home=home), 2)
    assert "uncommitted changes (projects.yaml); nothing done" in line


def test_rendered_files_carry_the_pin_never_the_running_imagesmith() -> None:
    """So a patch release of the same line renders byte for byte the same (`render --check` stays green)."""
    from imagesmith import __version__
    from imagesmith.images.plan import make_plan
    from imagesmith.images.policy import default_policy_text, parse_policy
    from imagesmith.images.render import render_files
    from imagesmith.images.yamlpos import load_text
    from imagesmith.matrix import knowledge

    pin = "0.0.7"
    assert pin != __version__
    text = default_policy_text().replace(
        "schema: 1\n", f'schema: 1\nimagesmith-version: "{pin}"\nrelease: 3\n', 1
    )
    kb = knowledge.load()
    files = render_files(make_plan(kb, parse_policy(load_text(text, "imagesmith.yaml"), kb))).files
    for path, body in files.items():
        assert f"imagesmith {__version__}" not in body and f"imagesmith=={__version__}" not in body, path
        assert f'"io.imagesmith.version": "{__version__}"' not in body, path
    assert f'python -m pip install "imagesmith=={pin}"' in files[".github/workflows/images.yml"]
    assert f'"imagesmith_release": "{pin}"' in files["base_images/plan.json"]
    assert all(
        f"io.imagesmith.version={json.dumps(pin)}" in body
        for p, body in files.items()
        if p.endswith("Dockerfile")
    )
