"""Where a team's platform repository keeps each file imagesmith writes or reads (paths relative to its root).

One home for the layout, so that ``images render``, ``build``, the copier extension, ``init`` and ``upgrade``
agree on it.
"""

from __future__ import annotations

POLICY = "imagesmith.yaml"
IMAGES_DIR = "base_images"
PLAN_JSON = f"{IMAGES_DIR}/plan.json"
# GitHub Actions reads workflows from here and nowhere else.
WORKFLOWS_DIR = ".github/workflows"
IMAGES_WORKFLOW = f"{WORKFLOWS_DIR}/images.yml"
HARVEST_WORKFLOW = f"{WORKFLOWS_DIR}/matrix-harvest.yml"
# `docker buildx bake` reads docker-bake.json from the directory it runs in.
BAKE_FILE = "docker-bake.json"
PROJECTS = "projects.yaml"
# The team-repository template's answers (copier's answers file): what `imagesmith upgrade` updates from.
TEAM_ANSWERS = ".imagesmith/team-answers.yml"
# Where files of earlier imagesmith releases were rendered (`images render` names them as left behind).
LEGACY_RENDERED = ("ci/images.yml", "ci/docker-bake.json", "ci/matrix-harvest.yml")
