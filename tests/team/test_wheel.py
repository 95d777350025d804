"""The sdist and the wheel carry everything a team needs, and the wheel runs with nothing of the checkout."""

from __future__ import annotations

import tarfile
import zipfile
from pathlib import Path

from tests.team import kit

# Package data a team's repository is made from, and the knowledge the commands read.
CARRIED = (
    "imagesmith/team/template",
    "imagesmith/matrix/data",
    "imagesmith/images/templates",
    "imagesmith/picker/data",
)


def _tree(root: Path, folder: str) -> set[str]:
    return {
        p.relative_to(root).as_posix()
        for p in (root / folder).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }


def test_the_sdist_and_the_wheel_carry_the_templates_and_the_data(wheels: dict[str, Path]) -> None:
    version = kit.current_version()
    wheel = wheels[version]
    with zipfile.ZipFile(wheel) as archive:
        in_wheel = set(archive.namelist())
    sdist = next(wheel.parent.glob(f"imagesmith-{version}.tar.gz"))
    with tarfile.open(sdist) as archive:
        in_sdist = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    for folder in CARRIED:
        wanted = _tree(kit.REPO, folder)
        assert wanted, folder
        assert not wanted - in_wheel, f"missing from the wheel: {sorted(wanted - in_wheel)[:5]}"
        assert not wanted - in_sdist, f"missing from the sdist: {sorted(wanted - in_sdist)[:5]}"
    # The dotfiles and the {{ }} names of the project templates, which glob patterns miss most easily.
    assert "imagesmith/team/template/repo/templates/batch/.github/workflows/ci.yml.jinja" in in_wheel
    assert "imagesmith/team/template/repo/templates/base/gitignore.jinja" in in_wheel
    assert "imagesmith/team/template/repo/templates/batch/src/{{package_name}}/cli.py.jinja" in in_wheel
    assert "imagesmith/team/template/repo/.gitignore.tmpl" in in_wheel
    # No tests, benchmarks or tools travel with the tool.
    assert not [n for n in in_wheel if n.startswith(("tests/", "bench/", "tools/"))]
