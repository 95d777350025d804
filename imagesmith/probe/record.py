"""Frozen, keyword-only records for the doctor's hot path, without importing ``dataclasses``.

``dataclasses`` imports ``inspect`` (and with it ``ast``, ``dis``, ``tokenize``, ``enum``): about 13 ms of
the 40 ms that ``imagesmith doctor why`` may take in a slim pod. ``record`` generates what
``@dataclass(frozen=True, kw_only=True)`` would for the subset the loader model uses: annotated fields
in order, plain (immutable) defaults, a keyword-only ``__init__``, ``__eq__``/``__hash__`` over the
fields, ``__repr__``, and no assignment after construction. Type checkers see it as a dataclass
transform, so every constructor call is checked like a dataclass's.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing costs ~5 ms (it imports re); mypy treats this name as True
if TYPE_CHECKING:
    from typing import TypeVar

    from typing_extensions import dataclass_transform

    T = TypeVar("T")
else:

    def dataclass_transform(**_options: object) -> object:
        return lambda decorated: decorated


class FrozenRecordError(AttributeError):
    """Assignment to a field of a frozen record."""


def _frozen(self: object, name: str, value: object) -> None:
    raise FrozenRecordError(f"cannot assign to field {name!r} of a frozen {type(self).__name__}")


def _frozen_del(self: object, name: str) -> None:
    raise FrozenRecordError(f"cannot delete field {name!r} of a frozen {type(self).__name__}")


@dataclass_transform(kw_only_default=True, frozen_default=True)
def record(cls: type[T]) -> type[T]:
    """Class decorator: turn the annotated class body into a frozen, keyword-only record."""
    names = tuple(cls.__dict__.get("__annotations__", {}))  # noqa: RUF063 - inspect is what we avoid
    for name in names:
        default = cls.__dict__.get(name)
        if isinstance(default, (list, dict, set)):
            raise TypeError(f"{cls.__name__}.{name}: mutable default")
    defaults = {n: cls.__dict__[n] for n in names if n in cls.__dict__}
    allowed = frozenset(names)
    required = allowed - defaults.keys()
    qualname = cls.__qualname__

    # One generic __init__ rather than generated source: compiling a function per class costs ~0.2 ms
    # at import, more than the generic form costs over all the records one run creates.
    def __init__(self: object, **values: object) -> None:
        if values.keys() != allowed:
            unknown = values.keys() - allowed
            if unknown:
                raise TypeError(
                    f"{qualname}() got unexpected keyword argument(s): {', '.join(sorted(unknown))}"
                )
            missing = required - values.keys()
            if missing:
                raise TypeError(f"{qualname}() missing keyword argument(s): {', '.join(sorted(missing))}")
        d = self.__dict__
        if defaults:
            d.update(defaults)
        d.update(values)

    def values(self: object) -> tuple[object, ...]:
        return tuple(getattr(self, n) for n in names)

    def __eq__(self: object, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return values(self) == values(other)

    def __hash__(self: object) -> int:
        return hash(values(self))

    def __repr__(self: object) -> str:
        fields = ", ".join(f"{n}={getattr(self, n)!r}" for n in names)
        return f"{type(self).__qualname__}({fields})"

    __init__.__qualname__ = f"{qualname}.__init__"
    for attr, fn in (
        ("__init__", __init__),
        ("__eq__", __eq__),
        ("__hash__", __hash__),
        ("__repr__", __repr__),
        ("__setattr__", _frozen),
        ("__delattr__", _frozen_del),
    ):
        setattr(cls, attr, fn)
    setattr(cls, "__match_args__", names)  # noqa: B010 - the class body declares no such attribute
    return cls
