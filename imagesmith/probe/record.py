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
    from typing import Any, TypeVar

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
    params = ", ".join(f"{n}=_default_{n}" if n in defaults else n for n in names)
    # Stores straight into the instance dict: object.__setattr__ per field (what frozen dataclasses
    # do) costs ~2 us per ld.so.cache entry, thousands of which are read per run.
    body = "    d = self.__dict__\n" + "".join(f"    d[{n!r}] = {n}\n" for n in names)
    namespace: dict[str, Any] = {}
    namespace.update({f"_default_{n}": v for n, v in defaults.items()})
    exec(
        f"def __init__(self, *, {params}):\n{body}" if names else "def __init__(self):\n    pass\n", namespace
    )

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

    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    for attr, fn in (
        ("__init__", init),
        ("__eq__", __eq__),
        ("__hash__", __hash__),
        ("__repr__", __repr__),
        ("__setattr__", _frozen),
        ("__delattr__", _frozen_del),
    ):
        setattr(cls, attr, fn)
    setattr(cls, "__match_args__", names)  # noqa: B010 - the class body declares no such attribute
    return cls
