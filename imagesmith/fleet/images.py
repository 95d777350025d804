"""Image references -> what the images promise (labels), for the scan: from the registry without pulling
(``imagesmith.registry.facts``, cached by digest, the engine as fallback) or from a file.

An image built outside imagesmith has no ``io.imagesmith.cuda`` label; NVIDIA's CUDA images (and most built on
them) set ``CUDA_VERSION`` in their ENV, which stands in for it. A reference whose facts cannot be read is a
reason (one line), not an exception: its workloads are reported ``unknown``.
"""

from __future__ import annotations

from imagesmith.contract.labels import ImageLabels
from imagesmith.contract.record import replace
from imagesmith.errors import DataError, ImagesmithError

TYPE_CHECKING = False  # mypy treats this name as True
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    Resolver = Callable[[str], ImageLabels | str]


def promised(labels: dict[str, str], env: dict[str, str]) -> ImageLabels:
    found = ImageLabels.from_labels(labels)
    if found.cuda is None and env.get("CUDA_VERSION"):
        found = replace(found, cuda=env["CUDA_VERSION"])
    return found


def from_registry(*, timeout: float = 10.0) -> Resolver:
    def resolve(ref: str) -> ImageLabels | str:
        from imagesmith.registry.facts import image_facts

        try:
            facts = image_facts(ref, timeout=timeout)
        except ImagesmithError as exc:
            return exc.one_line()
        return promised(facts.labels, facts.env)

    return resolve


def from_file(path: str) -> Resolver:
    """``{"REF": {"labels": {...}, "env": {...}}}`` (or ``{"REF": {label: value}}``), e.g. kept from a registry
    that the machine running the scan cannot reach."""
    import json
    from pathlib import Path

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError("file not found", where=path) from None
    except json.JSONDecodeError as exc:
        raise DataError(f"not JSON: {exc.msg}", where=f"{path}:{exc.lineno}") from None
    if not isinstance(data, dict):
        raise DataError("expected an object of image reference -> labels", where=path)
    table: dict[str, ImageLabels] = {}
    for ref, entry in data.items():
        if not isinstance(entry, dict):
            raise DataError(f"{ref}: expected an object", where=path)
        labels: Any = entry.get("labels", entry) if "labels" in entry or "env" in entry else entry
        env: Any = entry.get("env") or {}
        table[str(ref)] = promised(
            {str(k): str(v) for k, v in labels.items()}, {str(k): str(v) for k, v in env.items()}
        )

    def resolve(ref: str) -> ImageLabels | str:
        return table.get(ref) or f"not in {path}"

    return resolve
