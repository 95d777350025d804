"""Where the wheel keeps the team-repository template (package data, no imports beyond the standard library).

``template/`` is a copier template whose ``_subdirectory`` ``repo/`` becomes the team's repository: its README,
``projects.yaml`` and, copied verbatim, the project templates (``copier.yml`` and ``templates/``) that projects
are ``copier copy``'d from. The project templates live here and nowhere else.
"""

from __future__ import annotations

from pathlib import Path

TEMPLATE_ROOT = Path(__file__).resolve().parent / "template"
# The project templates as the team's repository carries them (copier.yml and templates/ at its root).
PROJECT_TEMPLATE = TEMPLATE_ROOT / "repo"
PROJECT_TEMPLATE_FILES = ("copier.yml", "templates")


def copy_project_templates(destination: Path) -> None:
    """Copy the project templates into ``destination`` as a team repository holds them (tests, benches)."""
    import shutil

    for name in PROJECT_TEMPLATE_FILES:
        source = PROJECT_TEMPLATE / name
        if source.is_dir():
            shutil.copytree(source, destination / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, destination / name)
