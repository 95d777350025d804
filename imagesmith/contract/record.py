"""Frozen, keyword-only records for the doctor, without importing ``dataclasses``.

``dataclasses`` imports ``inspect`` (and with it ``ast``, ``dis``, ``tokenize``, ``enum``): about 13 ms of
the 40 ms that ``imagesmith doctor why`` may take in a slim pod. ``record`` gives a class what
``@dataclass(frozen=True, kw_only=True)`` would, for the subset the doctor uses: annotated fields in
order, immutable defaults or ``field(default_factory=...)``, a keyword-only ``__init__``,
``__eq__``/``__hash__`` over the fields, ``__repr__``, ``__match_args__`` and no assignment after
construction; ``as_dict`` is a shallow ``asdict`` and ``replace`` is ``dataclasses.replace``. Not
supported (and not used): inheritance between records, ordering, pickling. Type checkers see ``record`` as a dataclass transform, so
every constructor call is checked like a dataclass's.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing costs ~5 ms (it imports re); mypy treats this name as True
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import TypeVar

    from typing_extensions import dataclass_transform

    T = TypeVar("T")
    V = TypeVar("V")
else:

    def dataclass_transform(**_options: object) -> object:
        return lambda decorated: decorated


class _Factory:
    __slots__ = ("make",)

    def __init__(self, make: Callable[[], object]) -> None:
        self.make = make


def field(*, default_factory: Callable[[], V]) -> V:
    """A default made fresh for each record (``field(default_factory=dict)``), as in dataclasses."""
    return _Factory(default_factory)  # type: ignore[return-value]


def as_dict(obj: object) -> dict[str, object]:
    """The fields of a record, in declaration order (shallow: nested values are returned as they are)."""
    return {n: getattr(obj, n) for n in type(obj).__record_fields__}  # type: ignore[attr-defined]


def replace(obj: T, **changes: object) -> T:
    """A copy of a record with some fields changed (``dataclasses.replace``)."""
    return type(obj)(**{**as_dict(obj), **changes})


class FrozenRecordError(AttributeError):
    """Assignment to a field of a frozen record."""


def _frozen(self: object, name: str, value: object) -> None:
    raise FrozenRecordError(f"cannot assign to field {name!r} of a frozen {type(self).__name__}")


def _frozen_del(self: object, name: str) -> None:
    raise FrozenRecordError(f"cannot delete field {name!r} of a frozen {type(self).__name__}")


@dataclass_transform(kw_only_default=True, frozen_default=True, field_specifiers=(field,))
def record(cls: type[T]) -> type[T]:
    """Class decorator: turn the annotated class body into a frozen, keyword-only record."""
    names = tuple(cls.__dict__.get("__annotations__", {}))  # noqa: RUF063 - inspect is what we avoid
    for name in names:
        default = cls.__dict__.get(name)
        if isinstance(default, (list, dict, set)):
            raise TypeError(f"{cls.__name__}.{name}: mutable default")
    defaults = {n: cls.__dict__[n] for n in names if n in cls.__dict__}
    factories = {n: v.make for n, v in defaults.items() if isinstance(v, _Factory)}
    for n in factories:
        del defaults[n]
        delattr(cls, n)
    allowed = frozenset(names)
    required = allowed - defaults.keys() - factories.keys()
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
        for n, make in factories.items():
            if n not in values:
                d[n] = make()
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
    setattr(cls, "__record_fields__", names)  # noqa: B010 - read by as_dict
    setattr(cls, "__match_args__", names)  # noqa: B010 - the class body declares no such attribute
    return cls
