"""The `why` fast path: how the dynamic loader finds a library, answered in a slim pod in ~1.5x interpreter
start. Standard library only, and none of the heavy parts of it: no ``json``, ``dataclasses``, ``argparse``,
``re`` or ``typing`` at run time, and nothing from ``imagesmith.matrix`` or ``imagesmith.registry``.

``elf`` (ELF facts, read with pread), ``ldcache`` (/etc/ld.so.cache), ``ldso`` (running the image's ld.so),
``loaderconf`` (the loader's configuration: search dirs, hwcaps, glibc), ``resolver`` (the loader's search, as ld.so does it), ``fsroot`` (paths
confined to --root), ``jsonout`` (the JSON emitter), ``options`` (flags) and ``why`` (the answer).
"""
