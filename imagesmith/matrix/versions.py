"""NVIDIA's dotted-integer versions: drivers (535.104.05), CUDA (12.4.1), cuDNN (9.10.2.21), compute capability (8.6).

These are not PEP 440 versions (Python packages go through ``packaging``): they are plain integer tuples,
compared numerically, and parsed strictly so that a typo is reported instead of silently ordered. Kept to
the standard library because the doctor imports it inside slim images.
"""

from __future__ import annotations

import re
from functools import total_ordering

_DOTTED = re.compile(r"\d+(?:\.\d+)*")
_SM = re.compile(r"(?:sm|compute)_?(\d+)(\d)[af]?", re.IGNORECASE)


@total_ordering
class NvVersion:
    """An immutable dotted-integer version. A plain slotted class rather than a dataclass because the
    doctor imports it in slim pods, and dataclasses pulls in inspect (~13 ms) for nothing we use."""

    __slots__ = ("parts", "text")
    __match_args__ = ("parts", "text")
    parts: tuple[int, ...]
    # The spelling we were given: driver components are zero-padded (580.65.06) and must print that way.
    text: str | None

    def __init__(self, parts: tuple[int, ...], text: str | None = None) -> None:
        object.__setattr__(self, "parts", parts)
        object.__setattr__(self, "text", text)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"NvVersion is immutable: cannot assign to {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"NvVersion is immutable: cannot delete {name!r}")

    def __reduce__(self) -> tuple[type[NvVersion], tuple[tuple[int, ...], str | None]]:
        return (NvVersion, (self.parts, self.text))

    def __repr__(self) -> str:
        return f"NvVersion(parts={self.parts!r}, text={self.text!r})"

    @classmethod
    def parse(cls, text: str) -> NvVersion:
        value = str(text).strip()
        if not _DOTTED.fullmatch(value):
            raise ValueError(f"not a dotted version: {text!r}")
        return cls(tuple(int(p) for p in value.split(".")), value)

    @classmethod
    def capability(cls, text: str) -> NvVersion:
        """A compute capability from ``8.6``, ``86``-style ``sm_86``/``compute_90a`` or ``sm_100``."""
        value = str(text).strip()
        match = _SM.fullmatch(value)
        if match:
            return cls((int(match.group(1)), int(match.group(2))))
        version = cls.parse(value)
        if len(version.parts) != 2:
            raise ValueError(f"not a compute capability: {text!r}")
        return version

    @property
    def major(self) -> int:
        return self.parts[0]

    @property
    def minor(self) -> int:
        return self.parts[1] if len(self.parts) > 1 else 0

    def truncate(self, n: int) -> NvVersion:
        """The first ``n`` components, padded with zeros (12.4.1 -> 12.4; 12 -> 12.0)."""
        return NvVersion((*self.parts[:n], *([0] * max(0, n - len(self.parts)))))

    def _key(self) -> tuple[int, ...]:
        # 12.4 == 12.4.0: trailing zeros do not change the order.
        parts = list(self.parts)
        while len(parts) > 1 and parts[-1] == 0:
            parts.pop()
        return tuple(parts)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NvVersion) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __lt__(self, other: NvVersion) -> bool:
        return self._key() < other._key()

    def __str__(self) -> str:
        return self.text or ".".join(str(p) for p in self.parts)

    @property
    def sm(self) -> str:
        """``sm_86`` for capability 8.6."""
        return f"sm_{self.major}{self.minor}"
