"""What the container's own ``ld.so`` was built with: system dirs, ``$LIB``, ``$PLATFORM``, hwcaps.

Read from ``ld.so --list-diagnostics`` / ``--help`` (both ~1 ms) because multiarch distros differ from
the man page; the compiled-in defaults below are only a fallback for loaders too old or foreign to run.
"""

from __future__ import annotations

import os
import select
import time

from imagesmith.contract.record import record
from imagesmith.doctor.loader import fsroot

LOADERS = ("/lib64/ld-linux-x86-64.so.2", "/lib/ld-linux-aarch64.so.1", "/lib64/ld64.so.2")


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


class LoaderQuery:
    """``ld.so --list-diagnostics`` and ``ld.so --help`` started at once; ``outputs`` collects them.

    Started before the caller's own work (``start``), so the two loaders run while the doctor imports its
    modules and checks its input; what stays on the doctor's path is ``posix_spawn`` itself, which returns
    once the kernel has begun each exec (``os.fork`` measured no better).
    posix_spawn and pipes instead of the subprocess module (whose import costs more than both runs)
    and no shell in between: distroless images have no /bin/sh.
    """

    __slots__ = ("_done", "_fds", "_pids")

    def __init__(self, loader: str) -> None:
        self._pids: list[int] = []
        self._fds: list[int] = []
        self._done = False
        try:
            for flag in ("--list-diagnostics", "--help"):
                read_fd, write_fd = os.pipe()
                try:
                    pid = os.posix_spawn(
                        loader,
                        [loader, flag],
                        {"LC_ALL": "C"},
                        file_actions=[
                            (os.POSIX_SPAWN_DUP2, write_fd, 1),
                            (os.POSIX_SPAWN_OPEN, 2, "/dev/null", os.O_WRONLY, 0),
                            (os.POSIX_SPAWN_CLOSE, read_fd),
                        ],
                    )
                except OSError:
                    os.close(read_fd)
                    raise
                finally:
                    os.close(write_fd)
                self._pids.append(pid)
                self._fds.append(read_fd)
        except OSError:
            self.close()

    def outputs(self) -> tuple[str, str]:
        """(``--list-diagnostics`` output, ``--help`` output), 5 s at most in all; ("", "") if either
        could not be run."""
        if self._done or len(self._fds) != 2:
            self.close()
            return "", ""
        outputs: dict[int, list[bytes]] = {fd: [] for fd in self._fds}
        finished = False
        try:
            deadline = time.monotonic() + 5
            open_fds = list(self._fds)
            while open_fds and time.monotonic() < deadline:
                ready, _w, _x = select.select(open_fds, [], [], max(0.0, deadline - time.monotonic()))
                for fd in ready:
                    chunk = os.read(fd, 65536)
                    if chunk:
                        outputs[fd].append(chunk)
                    else:
                        open_fds.remove(fd)
            finished = not open_fds
        except OSError:
            return "", ""
        finally:
            self.close(kill=not finished)
        diag, helptext = (b"".join(outputs[fd]).decode("utf-8", "replace") for fd in outputs)
        return diag, helptext

    def close(self, *, kill: bool = True) -> None:
        """Reap the loaders (killed first unless they have finished); idempotent."""
        if self._done:
            return
        self._done = True
        for fd in self._fds:
            os.close(fd)
        for pid in self._pids:
            try:
                if kill:
                    os.kill(pid, 9)  # a loader that hangs must not hang the doctor
                os.waitpid(pid, 0)
            except OSError:
                pass


def _run_loader(loader: str) -> tuple[str, str]:
    """(``--list-diagnostics`` output, ``--help`` output), both run at once, 5 s at most in all."""
    return LoaderQuery(loader).outputs()


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
    """A ``detect`` whose loader runs have been started; ``result`` finishes it (once)."""

    __slots__ = ("_args", "_loader", "_query")

    def __init__(
        self, root: str, environ: dict[str, str] | None, interpreter: str | None, cwd: str | None
    ) -> None:
        self._args = (root, environ, interpreter, cwd)
        candidates = ([interpreter] if interpreter else []) + list(LOADERS)
        self._loader = next((c for c in candidates if os.path.isfile(fsroot.host_path(root, c))), None)
        self._query = LoaderQuery(fsroot.host_path(root, self._loader)) if self._loader is not None else None

    def result(self) -> LoaderConfig:
        root, environ, _interpreter, cwd = self._args
        facts = _parse(*self._query.outputs()) if self._query is not None else {}
        return _config(root, environ, cwd, self._loader, facts)

    def close(self) -> None:
        """Give up on the result: the loaders are reaped (a no-op after ``result``)."""
        if self._query is not None:
            self._query.close()


def start(
    *,
    root: str = "/",
    environ: dict[str, str] | None = None,
    interpreter: str | None = None,
    cwd: str | None = None,
) -> PendingConfig:
    """``detect``, begun: the loader runs while the caller does other work, ``result()`` collects them."""
    return PendingConfig(root, environ, interpreter, cwd)


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
