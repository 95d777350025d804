"""The requirement grammar, after SkyPilot's (`4` exact, `4+` at least) with dstack-style ranges (`24..48`).

Forms: ``N`` exactly N (within 0.01, as SkyPilot compares counts); ``N+`` or ``N..`` at least N; ``..N`` at most N;
``A..B`` from A to B inclusive. Memory also takes ``Nx``: at least N GiB per vCPU. Numbers carry no unit: memory is
GiB, GPU memory is per GPU in the basis named by --gpu-memory-basis.
"""

from __future__ import annotations

from imagesmith.contract.record import record
from imagesmith.errors import UsageError
from imagesmith.matrix.versions import Capability

_TOLERANCE = 0.01
_DIGITS = frozenset("0123456789")


def _number(text: str) -> float | None:
    """An unsigned decimal (12, 1.5, .5) or None: no sign, exponent, unit or `nan` (``float()`` takes those).
    By hand rather than ``re``: `imagesmith pick` is timed against interpreter start."""
    if not text or text.endswith(".") or not set(text.replace(".", "", 1)) <= _DIGITS:
        return None
    return float(text)


@record
class Range:
    low: float | None
    high: float | None
    text: str

    @property
    def exact(self) -> bool:
        """`N`: both bounds set, within the tolerance of one number."""
        return (
            self.low is not None and self.high is not None and self.high - self.low <= 2 * _TOLERANCE + 1e-9
        )

    def contains(self, value: float) -> bool:
        return (self.low is None or value >= self.low - 1e-9) and (
            self.high is None or value <= self.high + 1e-9
        )


@record
class Ratio:
    """Memory as a multiple of the vCPU count (`4x` = at least 4 GiB per vCPU)."""

    per_vcpu: float
    text: str


def _bad(flag: str, text: str, why: str) -> UsageError:
    return UsageError(f"{why}; write N (exact), N+ (at least), A..B, ..B", where=f"{flag} {text!r}")


def parse_range(text: str, *, flag: str) -> Range:
    value = text.strip().replace(" ", "")
    if (n := _number(value)) is not None:
        return Range(low=n - _TOLERANCE, high=n + _TOLERANCE, text=value)
    if value.endswith("+") and (n := _number(value[:-1])) is not None:
        return Range(low=n, high=None, text=value)
    head, dots, tail = value.partition("..")
    if dots and (not head or _number(head) is not None) and (not tail or _number(tail) is not None):
        low = _number(head) if head else None
        high = _number(tail) if tail else None
        if low is None and high is None:
            raise _bad(flag, text, "an empty range")
        if low is not None and high is not None and low > high:
            raise _bad(flag, text, f"the range is empty ({low:g} > {high:g})")
        return Range(low=low, high=high, text=value)
    if any(c.isalpha() for c in value):
        raise _bad(flag, text, "numbers carry no unit here (memory is GiB, GPU memory is GB/GiB per GPU)")
    raise _bad(flag, text, "not a number or range")


def parse_memory(text: str, *, flag: str = "--memory") -> Range | Ratio:
    value = text.strip().replace(" ", "")
    if value.endswith("x") and (n := _number(value[:-1])) is not None:
        return Ratio(per_vcpu=n, text=value)
    return parse_range(value, flag=flag)


def parse_capability(text: str, *, flag: str = "--min-cc") -> Capability:
    try:
        return Capability.parse(text.lower())
    except ValueError:
        raise UsageError(
            "a compute capability is written 8.0, 9.0, 12.0 (or sm_80)", where=f"{flag} {text!r}"
        ) from None


def parse_price(text: str | float, *, flag: str = "--max-price") -> float:
    try:
        value = float(str(text).strip().lstrip("$"))
    except ValueError:
        raise UsageError("a price is USD per hour, e.g. 5 or 2.5", where=f"{flag} {text!r}") from None
    if value <= 0:
        raise UsageError("a price limit must be above 0", where=f"{flag} {text!r}")
    return value


def require_positive(value: Range, *, flag: str, what: str) -> Range:
    """A count that cannot be zero or less (vCPUs, memory): ``0``, ``..0`` are refused in one line."""
    if value.high is not None and value.high <= 0.01 + 1e-9:
        raise UsageError(f"{what} must be above 0", where=f"{flag} {value.text!r}")
    return value


def require_whole(value: Range, *, flag: str) -> Range:
    """GPU counts are whole unless --allow-fractional (time-sliced or partitioned GPUs)."""
    written = [n for n in value.text.rstrip("+").split("..") if n]
    if any(float(n) != int(float(n)) for n in written):
        raise UsageError(
            "GPUs come whole (1, 2, 8); a fraction of one needs --allow-fractional",
            where=f"{flag} {value.text!r}",
        )
    return value
