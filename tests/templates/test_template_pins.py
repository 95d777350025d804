"""The project side of the image's pins, rendered by real copier from a team repository with real locks:
the constraints for local development and CI, and the FROM line's digest pin (unpinned, saying why, when
the registry does not answer; tests/golden pins against a real registry)."""

from __future__ import annotations

from pathlib import Path

import pytest

from imagesmith.contract import pins
from tests.templates.templates_kit import VENV_BIN, clone_template, commit_all, copy, git, run_tool

# A registry port nothing listens on: the connection is refused at once.
REGISTRY = "127.0.0.1:9/team"
POLICY = f"""schema: 1
registry: {REGISTRY}
maintainer: Team <ml-platform@example.com>
vendor: team
bases:
  bookworm: {{image: debian:bookworm-slim, python: "3.11", description: Debian 12 (bookworm)}}
pythons: ["3.11"]
variants: [runtime]
frameworks:
  cuda: ["12.9"]
fleet:
  - {{name: l4, driver: "575.57.08", gpu: L4}}
"""
IMAGE = f"{REGISTRY}/cuda:12.9-py3.11-runtime-bookworm"


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory) -> Path:
    template = clone_template(tmp_path_factory.mktemp("team") / "t", policy=POLICY)
    imagesmith = str(VENV_BIN / "imagesmith")
    locked = run_tool(
        [imagesmith, "images", "lock", "--ca-cert", "/etc/ssl/certs/ca-certificates.crt"], template
    )
    assert locked.returncode == 0, locked.stdout + locked.stderr
    assert run_tool([imagesmith, "images", "render"], template).returncode == 0
    commit_all(template, "locks")
    git(template, "tag", "v1")
    return template


def test_the_project_gets_the_images_pins_from_the_teams_locks(team: Path, tmp_path: Path) -> None:
    project = copy(
        team, tmp_path / "lib", ref="v1", project_type="library", framework="none", base_image=IMAGE
    )
    constraints = pins.parse_constraints((project / ".imagesmith/constraints.txt").read_text(), "c")
    expected: dict[str, str] = {}
    for image in ("base-py3.11-bookworm", "cuda-12.9-py3.11-bookworm-runtime"):
        path = team / "base_images" / image / "requirements.lock"
        expected |= {p.key: p.version for p in pins.parse_lock(path.read_text(), str(path)).pins}
    assert {p.key: p.version for p in constraints} == expected
    assert "nvidia-cuda-runtime-cu12" in expected
    assert "-c .imagesmith/constraints.txt -e '.[dev]'" in (project / ".github/workflows/ci.yml").read_text()
    dockerfile = (project / "Dockerfile").read_text()
    # A library follows the tag: no digest, no note; the install goes through the guard, with the escape hatch.
    assert f"ARG BASE_IMAGE={IMAGE}\n" in dockerfile and "NOT PINNED" not in dockerfile
    assert 'python -m imagesmith.guard pip install --no-cache-dir ".${PROJECT_EXTRAS}"' in dockerfile
    assert "ARG IMAGE_PINS=on" in dockerfile and "unset PIP_CONSTRAINT UV_CONSTRAINT" in dockerfile


def test_a_service_pins_by_digest_and_says_why_when_it_cannot(team: Path, tmp_path: Path) -> None:
    project = copy(
        team, tmp_path / "svc", ref="v1", project_type="service", framework="none", base_image=IMAGE
    )
    dockerfile = (project / "Dockerfile").read_text()
    note = next(line for line in dockerfile.splitlines() if line.startswith("# NOT PINNED: "))
    assert "registry 127.0.0.1:9 cannot be reached" in note and "imagesmith images bump" in note
    assert f"ARG BASE_IMAGE={IMAGE}\n" in dockerfile
    # `images bump` in the project answers the same way: one line, the environment exit code.
    bumped = run_tool([str(VENV_BIN / "imagesmith"), "images", "bump"], project)
    assert bumped.returncode == 3 and "registry 127.0.0.1:9 cannot be reached" in bumped.stderr
    assert bumped.stderr.count("\n") == 1


def test_an_image_without_locks_says_where_the_pins_come_from(tmp_path: Path) -> None:
    # This checkout's default plan: its default image (cu126, from download.pytorch.org) has no lock here.
    template = clone_template(tmp_path / "t")
    git(template, "tag", "v1")
    project = copy(template, tmp_path / "p", ref="v1", project_type="library")
    text = (project / ".imagesmith/constraints.txt").read_text()
    assert text.startswith("# No constraints for ") and "has no lock in the template repository" in text
    assert pins.parse_constraints(text, "c") == ()


def test_bump_moves_each_pinned_base_line_on_its_own_and_nothing_else() -> None:
    """The shipped base and the dev stage's devel twin are pinned on two ARG lines; a bump rewrites the lines
    that moved (each to its own tag's digest) and drops the NOT PINNED note, leaving every other byte."""
    from imagesmith.templating import bump

    old, new, dev_new = "sha256:" + "a" * 64, "sha256:" + "b" * 64, "sha256:" + "c" * 64
    text = (
        "# NOT PINNED: registry down. Run `imagesmith images bump` once the registry answers.\n"
        f"ARG BASE_IMAGE={IMAGE}@{old}\n"
        f"ARG DEV_BASE_IMAGE={IMAGE.replace('runtime', 'devel')}\n"
        "FROM ${BASE_IMAGE} AS app\nUSER 0\nFROM ${DEV_BASE_IMAGE} AS dev\n"
    )
    moves = (
        bump.Bump(dockerfile=Path("Dockerfile"), arg="BASE_IMAGE", tag=IMAGE, old=old, new=new, changes=()),
        bump.Bump(
            dockerfile=Path("Dockerfile"),
            arg="DEV_BASE_IMAGE",
            tag=IMAGE.replace("runtime", "devel"),
            old=None,
            new=dev_new,
            changes=(),
        ),
    )
    out = bump.rewrite(text, moves)
    assert f"ARG BASE_IMAGE={IMAGE}@{new}\n" in out
    assert f"ARG DEV_BASE_IMAGE={IMAGE.replace('runtime', 'devel')}@{dev_new}\n" in out
    assert "NOT PINNED" not in out and out.startswith(bump.PINNED_NOTE)
    assert out.endswith("FROM ${BASE_IMAGE} AS app\nUSER 0\nFROM ${DEV_BASE_IMAGE} AS dev\n")
    # Only the base line moved: the dev line stays byte for byte.
    only = bump.rewrite(text, moves[:1])
    assert f"ARG DEV_BASE_IMAGE={IMAGE.replace('runtime', 'devel')}\n" in only


def test_bump_refuses_a_dockerfile_without_the_base_line(tmp_path: Path) -> None:
    from imagesmith.errors import UsageError
    from imagesmith.templating import bump

    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(f"ARG DEV_BASE_IMAGE={IMAGE}\nFROM ${{DEV_BASE_IMAGE}}\n", encoding="utf-8")
    with pytest.raises(UsageError, match="no `ARG BASE_IMAGE=` line"):
        bump.base_refs(dockerfile)
    dockerfile.write_text(f"ARG BASE_IMAGE={IMAGE}\nARG DEV_BASE_IMAGE={IMAGE}\n", encoding="utf-8")
    assert [(arg, line) for arg, _, line in bump.base_refs(dockerfile)] == [
        ("BASE_IMAGE", 1),
        ("DEV_BASE_IMAGE", 2),
    ]
