"""Running the container's own ``ld.so`` to ask how it was built (``--list-diagnostics``, ``--help``).

A module of its own that imports nothing but ``os`` and ``time``, so that ``doctor why`` can start the loader
before it imports anything else: the loader answers (~1 ms) while the resolver's modules load. What the
answer means is ``loaderconf``'s business.
"""

from __future__ import annotations

import os
import time

LOADERS = ("/lib64/ld-linux-x86-64.so.2", "/lib/ld-linux-aarch64.so.1", "/lib64/ld64.so.2")


class LoaderQuery:
    """``ld.so FLAG`` started now; ``output`` collects what it printed.

    Started before the caller's own work (``start``), so the loader runs while the doctor imports its
    modules and checks its input; what stays on the doctor's path is ``posix_spawn`` itself, which returns
    once the kernel has begun the exec (``os.fork`` measured no better). posix_spawn and a pipe instead of
    the subprocess module (whose import costs more than the run), no ``select`` (another extension module to
    load: a non-blocking pipe polled every 0.1 ms is as quick for a ~1 ms run) and no shell in between:
    distroless images have no /bin/sh.
    """

    __slots__ = ("_done", "_fd", "_pid")

    def __init__(self, loader: str, flag: str) -> None:
        self._pid: int | None = None
        self._fd: int | None = None
        self._done = False
        read_fd, write_fd = os.pipe()
        try:
            os.set_blocking(read_fd, False)  # our end only: the loader writes to a blocking pipe as usual
            self._pid = os.posix_spawn(
                loader,
                [loader, flag],
                {"LC_ALL": "C"},
                file_actions=[
                    (os.POSIX_SPAWN_DUP2, write_fd, 1),
                    (os.POSIX_SPAWN_OPEN, 2, "/dev/null", os.O_WRONLY, 0),
                    (os.POSIX_SPAWN_CLOSE, read_fd),
                ],
            )
            self._fd = read_fd
        except OSError:
            os.close(read_fd)
        finally:
            os.close(write_fd)

    def output(self, timeout: float = 5.0) -> str:
        """What the loader printed on stdout, ``timeout`` seconds at most; "" if it could not be run."""
        if self._done or self._fd is None:
            self.close()
            return ""
        chunks: list[bytes] = []
        finished = False
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    chunk = os.read(self._fd, 65536)
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        return ""
                    time.sleep(0.0001)
                    continue
                if not chunk:
                    finished = True
                    break
                chunks.append(chunk)
        except OSError:
            return ""
        finally:
            self.close(kill=not finished)
        return b"".join(chunks).decode("utf-8", "replace")

    def close(self, *, kill: bool = True) -> None:
        """Reap the loader (killed first unless it has finished); idempotent."""
        if self._done:
            return
        self._done = True
        if self._fd is not None:
            os.close(self._fd)
        if self._pid is not None:
            try:
                if kill:
                    os.kill(self._pid, 9)  # a loader that hangs must not hang the doctor
                os.waitpid(self._pid, 0)
            except OSError:
                pass


class LoaderRun:
    """The loader found inside a root (root-relative path, ``None`` when there is none) and its
    ``--list-diagnostics`` run, started."""

    __slots__ = ("loader", "query")

    def __init__(self, loader: str | None, query: LoaderQuery | None) -> None:
        self.loader = loader
        self.query = query

    def close(self) -> None:
        if self.query is not None:
            self.query.close()


def start(root: str = "/", interpreter: str | None = None) -> LoaderRun:
    """Find the loader of ``root`` (``interpreter`` first: a program's own PT_INTERP) and start it."""

    def host(path: str) -> str:
        if root == "/":
            return path
        from imagesmith.doctor.loader import fsroot  # links inside an unpacked image stay inside it

        return fsroot.host_path(root, path)

    candidates = ([interpreter] if interpreter else []) + list(LOADERS)
    loader = next((c for c in candidates if os.path.isfile(host(c))), None)
    return LoaderRun(loader, LoaderQuery(host(loader), "--list-diagnostics") if loader is not None else None)
