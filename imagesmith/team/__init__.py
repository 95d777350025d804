"""The team's platform repository: the template shipped in the wheel, ``init``, ``upgrade``, the requirement."""
