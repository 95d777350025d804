"""Load a shared library and call its C functions: the part of ``ctypes`` the probe uses, on ``_ctypes``.

The probe runs in a forked child, and on a GPU node that child is the full doctor's longest single task:
there, importing the ``ctypes`` package (``types``, ~40 classes and their metaclasses, all copy-on-write
faults after the fork) costs ~2.8 ms against ~1.2 ms for the C module it wraps. The names and their behaviour are ``ctypes``' own: ``CDLL(path)`` is ``dlopen`` with
RTLD_NOW | RTLD_LOCAL (``_ctypes`` adds RTLD_NOW, as for ``ctypes``), functions use the C calling convention
and return ``c_int`` unless given another ``restype``; a library that does not load raises ``OSError``, a
missing symbol ``AttributeError``. Type checkers see the ``ctypes`` originals; tests/doctor/test_probe_dlcall.py
holds the probe's answers through this module to its answers through ``ctypes``.
"""

from __future__ import annotations

TYPE_CHECKING = False  # mypy treats this name as True
if TYPE_CHECKING:
    from ctypes import CDLL, byref, c_char_p, c_int, c_uint, c_ulonglong, c_void_p, create_string_buffer
else:
    import _ctypes
    from _ctypes import byref

    def _simple(name, code):
        """A simple C type as ctypes declares it (``class c_int(_SimpleCData): _type_ = "i"``)."""
        return type(name, (_ctypes._SimpleCData,), {"_type_": code, "__module__": __name__})

    c_int = _simple("c_int", "i")
    c_uint = _simple("c_uint", "I")
    c_ulonglong = _simple("c_ulonglong", "Q")
    c_void_p = _simple("c_void_p", "P")
    c_char = _simple("c_char", "c")
    c_char_p = _simple("c_char_p", "z")

    def create_string_buffer(size):
        """A zeroed ``char[size]``; ``.value`` is its bytes up to the first NUL."""
        return (c_char * size)()

    class _Function(_ctypes.CFuncPtr):
        _flags_ = _ctypes.FUNCFLAG_CDECL
        _restype_ = c_int

    class CDLL:
        """A loaded library; each function is looked up on first use and kept, as in ``ctypes.CDLL``."""

        def __init__(self, name):
            self._name = name
            self._handle = _ctypes.dlopen(name, 0)  # RTLD_LOCAL, ctypes' DEFAULT_MODE

        def __getattr__(self, name):
            if name.startswith("__") and name.endswith("__"):
                raise AttributeError(name)
            func = _Function((name, self))
            func.__name__ = name
            setattr(self, name, func)
            return func


__all__ = ["CDLL", "byref", "c_char_p", "c_int", "c_uint", "c_ulonglong", "c_void_p", "create_string_buffer"]
