"""NVIDIA's dotted-integer versions: drivers (535.104.05), CUDA (12.4.1), cuDNN (9.10.2.21), compute capability (8.6).

These are not PEP 440 versions (Python packages go through ``packaging``): they are plain integer tuples,
compared numerically, and parsed strictly so that a typo is reported instead of silently ordered. Kept to
the standard library because the doctor imports it inside slim images.
"""

from __future__ import annotations

TYPE_CHECKING = False  # mypy treats this name as True; typing costs milliseconds on the verdict path
if TYPE_CHECKING:
    from collections.abc import Iterable

# No ``re``: it costs ~6 ms to import, and the verdict path (matrix check, the doctor) must stay fast.


def _number(text: str) -> bool:
    return text.isascii() and text.isdigit()


def _dotted(text: str) -> bool:
    """ASCII digits in groups separated by single dots (12.4.1)."""
    return all(_number(p) for p in text.split("."))


def _leading(text: str) -> str:
    """The longest prefix of ``text`` that is a dotted version ('' when none)."""
    end = 0
    for i, ch in enumerate(text):
        if ch.isascii() and ch.isdigit():
            end = i + 1
        elif ch != "." or not end or i != end:
            break
    return text[:end]


def _sm(text: str) -> tuple[int, int] | None:
    """``sm_86``, ``SM86``, ``compute_90a``, ``sm_100f`` -> (major, minor); None for anything else."""
    lower = text.lower()
    for prefix in ("sm", "compute"):
        if lower.startswith(prefix):
            digits = lower[len(prefix) :].removeprefix("_")
            if digits[-1:] in ("a", "f"):
                digits = digits[:-1]
            if len(digits) >= 2 and _number(digits):
                return int(digits[:-1]), int(digits[-1])
    return None


class NvVersion:
    """An immutable dotted-integer version. A plain slotted class rather than a dataclass because the
    doctor imports it in slim pods, and dataclasses pulls in inspect (~13 ms) for nothing we use."""

    __slots__ = ("_key", "parts", "text")
    __match_args__ = ("parts", "text")
    parts: tuple[int, ...]
    # The spelling we were given: driver components are zero-padded (580.65.06) and must print that way.
    text: str | None

    _key: tuple[int, ...]

    def __init__(self, parts: tuple[int, ...], text: str | None = None) -> None:
        object.__setattr__(self, "parts", parts)
        object.__setattr__(self, "text", text)
        # The order key, computed once (a plan compares versions thousands of times): 12.4 == 12.4.0,
        # trailing zeros do not change the order.
        end = len(parts)
        while end > 1 and parts[end - 1] == 0:
            end -= 1
        object.__setattr__(self, "_key", parts[:end])

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
        if cls is NvVersion:
            # The data repeats a few hundred spellings (12.4, 535.54.03): parse each once; values are
            # immutable, so sharing them is safe.
            known = _VERSIONS.get(text)
            if known is None:
                known = cls._parse_dotted(text)
                if len(_VERSIONS) < 4096:
                    _VERSIONS[text] = known
            return known
        return cls._parse_dotted(text)

    @classmethod
    def _parse_dotted(cls, text: str) -> NvVersion:
        value = str(text).strip()
        if not _dotted(value):
            raise ValueError(f"not a dotted version: {text!r}")
        return cls(tuple(int(p) for p in value.split(".")), value)

    @classmethod
    def leading(cls, text: str | None) -> NvVersion | None:
        """The dotted version a reported string starts with (``12.4.127+cu124`` -> 12.4.127), or None.

        For values read from the node (library file names, framework attributes), where a suffix is
        normal and an unreadable value is a fact to report, not an error."""
        prefix = _leading(str(text or "").strip())
        return cls.parse(prefix) if prefix else None

    @staticmethod
    def capability(text: str) -> Capability:
        """A compute capability from ``8.6``, ``86``-style ``sm_86``/``compute_90a`` or ``sm_100``."""
        return Capability.parse(text)

    @property
    def major(self) -> int:
        return self.parts[0]

    @property
    def minor(self) -> int:
        return self.parts[1] if len(self.parts) > 1 else 0

    def keeps(self, promised: NvVersion) -> bool:
        """Whether this reported version keeps a promise given to fewer components:
        12.8.90 keeps 12.8; 12.80 and 12 do not."""
        return self.parts[: len(promised.parts)] == promised.parts

    def same_release(self, other: NvVersion, *, width: int = 3) -> bool:
        """Equal on the components both sides give, up to ``width`` (torch says 13.0 for a 13.0.2 runtime)."""
        n = min(len(self.parts), len(other.parts), width)
        return self.parts[:n] == other.parts[:n]

    def truncate(self, n: int) -> NvVersion:
        """The first ``n`` components, padded with zeros (12.4.1 -> 12.4; 12 -> 12.0)."""
        return NvVersion((*self.parts[:n], *([0] * max(0, n - len(self.parts)))))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NvVersion) and self._key == other._key

    def __hash__(self) -> int:
        return hash(self._key)

    def __lt__(self, other: NvVersion) -> bool:
        return self._key < other._key

    def __le__(self, other: NvVersion) -> bool:
        return self._key <= other._key

    def __gt__(self, other: NvVersion) -> bool:
        return self._key > other._key

    def __ge__(self, other: NvVersion) -> bool:
        return self._key >= other._key

    def __str__(self) -> str:
        return self.text or ".".join(str(p) for p in self.parts)

    @property
    def sm(self) -> str:
        """``sm_86`` for capability 8.6."""
        return f"sm_{self.major}{self.minor}"


class Capability(NvVersion):
    """A compute capability (major.minor): 8.6 is ``sm_86``. Its own type so that a CUDA version is never
    taken for one; ordered and compared like the dotted version it is."""

    __slots__ = ()

    def __init__(self, parts: tuple[int, ...], text: str | None = None) -> None:
        if len(parts) != 2:
            raise ValueError(f"not a compute capability: {text or parts!r}")
        super().__init__(parts, text)

    def __reduce__(self) -> tuple[type[NvVersion], tuple[tuple[int, ...], str | None]]:
        return (Capability, (self.parts, self.text))

    def __repr__(self) -> str:
        return f"Capability({self})"

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"

    @classmethod
    def parse(cls, text: str) -> Capability:
        """``8.6``, ``sm_86``, ``compute_90a``, ``sm_100``; anything else is a ValueError naming the text."""
        # A few dozen spellings recur hundreds of times in the data: parse each once (values are immutable).
        known = _CAPABILITIES.get(text)
        if known is not None:
            return known
        parsed = cls._parse(text)
        if len(_CAPABILITIES) < 4096:
            _CAPABILITIES[text] = parsed
        return parsed

    @classmethod
    def parse_all(cls, tokens: Iterable[str]) -> tuple[tuple[Capability, ...], tuple[str, ...]]:
        """The capabilities of an arch list's tokens (``sm_80``, ``compute_90``, ``8.6``), and the tokens that are
        none: each caller decides whether a stray token is skipped or refused."""
        parsed: list[Capability] = []
        refused: list[str] = []
        for token in tokens:
            try:
                parsed.append(cls.parse(token))
            except ValueError:
                refused.append(token)
        return tuple(parsed), tuple(refused)

    @classmethod
    def _parse(cls, text: str) -> Capability:
        value = str(text).strip()
        sm = _sm(value)
        if sm is not None:
            return cls(sm)
        if not _dotted(value):
            raise ValueError(f"not a compute capability: {text!r}")
        return cls(tuple(int(p) for p in value.split(".")), value)


_CAPABILITIES: dict[str, Capability] = {}
_VERSIONS: dict[str, NvVersion] = {}
