"""What the container's own ``ld.so`` was built with: system dirs, ``$LIB``, ``$PLATFORM``, hwcaps.

Read from ``ld.so --list-diagnostics`` (~1 ms; glibc >= 2.33), because multiarch distros differ from the
man page; ``ld.so --help`` is asked as well only where the diagnostics do not say everything (an older
glibc, or legacy hwcaps subdirectories on a machine other than x86-64). The compiled-in defaults below are
only a fallback for loaders too old or foreign to run.
"""

from __future__ import annotations

import os

from imagesmith.contract.record import record
from imagesmith.doctor.loader import fsroot
from imagesmith.doctor.loader.ldso import LoaderQuery, LoaderRun


@record
class LoaderConfig:
    """Inputs of the search that do not come from the ELF files themselves."""

    root: str
    interpreter: str | None
    system_dirs: tuple[str, ...]
    dst_lib: str
    platform: str
    hwcaps: tuple[str, ...]
    legacy_subdirs: tuple[str, ...]
    glibc_version: str | None
    ld_library_path: str | None
    ld_preload: str | None
    cwd: str
    cache_path: str = "/etc/ld.so.cache"


def legacy_subdirs(names: tuple[str, ...]) -> tuple[str, ...]:
    """glibc < 2.37 tries every subset of (tls, platform, hwcap names…), most specific first."""
    n = len(names)
    out = []
    for mask in range((1 << n) - 1, 0, -1):
        out.append("/".join(names[i] for i in range(n) if mask & (1 << (n - 1 - i))))
    return tuple(out)


# glibc 2.26-2.36 on x86-64 (sysdeps/x86/dl-hwcap.h): the legacy hwcap names, by bit of AT_HWCAP as
# ld.so reports it (``dl_hwcap``); HWCAP_IMPORTANT (``dl_hwcap_important``) says which are searched.
_X86_64_LEGACY_HWCAPS = ("sse2", "x86_64", "avx512_1")


def _diagnostics(diag: str) -> dict[str, str]:
    """``key=value`` lines of ``--list-diagnostics``; strings keep their quotes (a NULL string has none)."""
    out: dict[str, str] = {}
    for line in diag.splitlines():
        key, eq, value = line.partition("=")
        if eq and not key.startswith(("env", "auxv", "cpu_features", "x86")):
            out[key] = value
    return out


def _string(value: str | None) -> str | None:
    return value[1:-1] if value and len(value) >= 2 and value[0] == value[-1] == '"' else None


def _parse_diagnostics(diag: str) -> dict[str, object] | None:
    """Everything ``_parse`` reads from both outputs, from ``--list-diagnostics`` alone; ``None`` when that
    output cannot say it (before glibc 2.33, or legacy hwcaps this module has no name table for)."""
    d = _diagnostics(diag)
    if "dl_hwcaps_subdirs" not in d or "dl_hwcaps_subdirs_active" not in d:
        return None
    facts: dict[str, object] = {}
    dirs = tuple(
        (_string(v) or "").rstrip("/") or "/" for k, v in d.items() if k.startswith("path.system_dirs[")
    )
    if dirs:
        facts["system_dirs"] = dirs
    for key, name in (("dl_dst_lib", "dst_lib"), ("dl_platform", "platform"), ("version.version", "version")):
        value = _string(d.get(key))
        if value is not None:
            facts[name] = value
    try:
        active = int(d["dl_hwcaps_subdirs_active"], 0)
        hwcap = int(d.get("dl_hwcap", "0"), 0)
        important = int(d.get("dl_hwcap_important", "0"), 0)
    except ValueError:
        return None
    # Bit i of the active mask is the i-th name (glibc dl-usage.c prints "searched" exactly for these:
    # the --glibc-hwcaps-mask that could hide one is a command-line option of ld.so, not the environment).
    names = (_string(d["dl_hwcaps_subdirs"]) or "").split(":")
    facts["hwcaps"] = tuple(n for i, n in enumerate(names) if n and active >> i & 1)
    from imagesmith.doctor.loader import elf  # glibc's version scheme is read in one place

    if (elf.glibc_version(str(facts.get("version", ""))) or ()) >= (2, 37):
        return facts  # glibc 2.37 removed the legacy subdirectories
    searched = hwcap & important
    if not searched:
        legacy_other: list[str] = []
    elif _string(d.get("uname.machine")) == "x86_64" and searched < 1 << len(_X86_64_LEGACY_HWCAPS):
        # dl-usage.c lists them from the highest bit down; the tunable that masks them is not passed to ld.so.
        legacy_other = [_X86_64_LEGACY_HWCAPS[n] for n in range(len(_X86_64_LEGACY_HWCAPS) - 1, -1, -1)
                        if searched >> n & 1]  # fmt: skip
    else:
        return None
    platform = _string(d.get("dl_platform"))
    facts["legacy"] = legacy_subdirs(("tls", *((platform,) if platform else ()), *legacy_other))
    return facts


def _parse(diag: str, helptext: str) -> dict[str, object]:
    facts: dict[str, object] = {}
    dirs = []
    for line in diag.splitlines():
        key, _, value = line.partition("=")
        value = value.strip().strip('"')
        if key == "dl_dst_lib":
            facts["dst_lib"] = value
        elif key == "dl_platform":
            facts["platform"] = value
        elif key.startswith("path.system_dirs["):
            dirs.append(value.rstrip("/") or "/")
        elif key == "version.version":
            facts["version"] = value
    if dirs:
        facts["system_dirs"] = tuple(dirs)
    hw = []
    legacy_platform = None
    legacy_other: list[str] = []
    section = ""
    for line in helptext.splitlines():
        if line.startswith("Subdirectories of glibc-hwcaps"):
            section = "hwcaps"
        elif line.startswith("Legacy HWCAP"):
            section = "legacy"
        elif line.startswith("Shared library search path"):
            section = "dirs"
        elif not line.startswith("  "):
            section = ""
        elif section == "hwcaps" and "searched" in line and "not searched" not in line:
            hw.append(line.split()[0])
        elif section == "legacy" and "searched" in line and "not searched" not in line:
            name = line.split()[0]
            if "AT_PLATFORM" in line:
                legacy_platform = name
            elif name != "tls":
                legacy_other.append(name)
        elif section == "dirs" and "(system search path)" in line and "system_dirs" not in facts:
            dirs.append(line.split()[0])
    if dirs and "system_dirs" not in facts:
        facts["system_dirs"] = tuple(dirs)
    facts["hwcaps"] = tuple(hw)
    if legacy_platform or legacy_other:
        names = ("tls", *((legacy_platform,) if legacy_platform else ()), *legacy_other)
        facts["legacy"] = legacy_subdirs(names)
    return facts


def loader_facts(loader: str, diagnostics: LoaderQuery | None = None) -> dict[str, object]:
    """What ``_config`` needs from the loader: ``--list-diagnostics`` (already started, or run now), and
    ``--help`` only when the diagnostics cannot say it all."""
    diag = (diagnostics or LoaderQuery(loader, "--list-diagnostics")).output()
    facts = _parse_diagnostics(diag)
    if facts is None:
        facts = _parse(diag, LoaderQuery(loader, "--help").output())
    return facts


def _glibc_version_from_files(root: str, dirs: tuple[str, ...]) -> str | None:
    from imagesmith.doctor.loader import elf

    for d in dirs:
        path = fsroot.host_path(root, f"{d}/libc.so.6")
        try:
            with elf.MappedFile(path) as f:
                defs = elf.version_defs(f.data)
        except (OSError, elf.ElfError):
            continue
        best = max((v for v in map(elf.glibc_version, defs) if v), default=None)
        if best:
            return ".".join(str(p) for p in best)
    return None


class PendingConfig:
    """A ``detect`` whose loader run has been started; ``result`` finishes it (once)."""

    __slots__ = ("_args", "_run")

    def __init__(self, root: str, environ: dict[str, str] | None, cwd: str | None, run: LoaderRun) -> None:
        self._args = (root, environ, cwd)
        self._run = run

    def result(self) -> LoaderConfig:
        root, environ, cwd = self._args
        facts: dict[str, object] = {}
        if self._run.loader is not None:
            facts = loader_facts(fsroot.host_path(root, self._run.loader), self._run.query)
        return _config(root, environ, cwd, self._run.loader, facts)

    def close(self) -> None:
        """Give up on the result: the loader is reaped (a no-op after ``result``)."""
        self._run.close()


def start(
    *,
    root: str = "/",
    environ: dict[str, str] | None = None,
    interpreter: str | None = None,
    cwd: str | None = None,
    run: LoaderRun | None = None,
) -> PendingConfig:
    """``detect``, begun: the loader runs while the caller does other work, ``result()`` collects it.
    ``run``: a loader run the caller started itself, earlier still (``ldso.start``)."""
    from imagesmith.doctor.loader import ldso

    return PendingConfig(root, environ, cwd, run or ldso.start(root, interpreter))


def detect(
    *,
    root: str = "/",
    environ: dict[str, str] | None = None,
    interpreter: str | None = None,
    cwd: str | None = None,
) -> LoaderConfig:
    """Describe the loader that would run inside ``root`` (``/`` = this system)."""
    return start(root=root, environ=environ, interpreter=interpreter, cwd=cwd).result()


def _config(
    root: str, environ: dict[str, str] | None, cwd: str | None, loader: str | None, facts: dict[str, object]
) -> LoaderConfig:
    env = dict(os.environ if environ is None else environ)
    if "system_dirs" not in facts or root != "/":
        # A foreign or too-old loader: fall back to the layout found in the tree.
        multiarch = "lib/x86_64-linux-gnu"
        if os.path.isdir(fsroot.host_path(root, "/usr/lib/x86_64-linux-gnu")):
            dirs: tuple[str, ...] = (f"/{multiarch}", f"/usr/{multiarch}", "/lib", "/usr/lib")
        else:
            dirs = ("/lib64", "/usr/lib64", "/lib", "/usr/lib")
        facts.setdefault("system_dirs", dirs)
        facts.setdefault("dst_lib", multiarch if dirs[0].endswith("-gnu") else "lib64")
    system_dirs = facts["system_dirs"]
    assert isinstance(system_dirs, tuple)
    version = facts.get("version")
    if not isinstance(version, str) or root != "/":
        version = _glibc_version_from_files(root, system_dirs) or (
            version if isinstance(version, str) else None
        )
    from imagesmith.doctor.loader import elf

    legacy = facts.get("legacy", ())
    # Legacy hwcaps subdirectories were removed in glibc 2.37.
    if version and (elf.glibc_version(version) or ()) >= (2, 37):
        legacy = ()
    hwcaps = facts.get("hwcaps", ())
    assert isinstance(hwcaps, tuple) and isinstance(legacy, tuple)
    return LoaderConfig(
        root=root,
        interpreter=loader,
        system_dirs=system_dirs,
        dst_lib=str(facts.get("dst_lib", "lib64")),
        platform=str(facts.get("platform", os.uname().machine)),
        hwcaps=hwcaps,
        legacy_subdirs=legacy,
        glibc_version=version,
        ld_library_path=env.get("LD_LIBRARY_PATH"),
        ld_preload=env.get("LD_PRELOAD"),
        cwd=cwd if cwd is not None else os.getcwd(),
    )
