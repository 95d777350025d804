"""A static model of glibc's ``ld.so`` search: which file each DT_NEEDED / dlopen name becomes.

Order per name (glibc ``elf/dl-load.c`` ``_dl_map_object``): already-loaded names and SONAMEs; the
DT_RPATH of the requester and its loader chain, then of the executable (only when the requester has
no DT_RUNPATH); ``LD_LIBRARY_PATH``; the requester's own DT_RUNPATH; ``/etc/ld.so.cache``; the system
dirs. Each directory is probed under its glibc-hwcaps (and, before 2.37, legacy hwcaps) subdirectories
first. Objects load breadth-first, and the first to claim a SONAME wins for the whole process.
"""

from __future__ import annotations

import os
import posixpath
import stat

from imagesmith.contract.record import record
from imagesmith.doctor.loader import elf, fsroot, ldcache
from imagesmith.doctor.loader.loaderconf import LoaderConfig

VIAS = ("already_loaded", "rpath", "ld_library_path", "runpath", "ld_so_cache", "default_dirs", "not_found")

_MAX_OBJECTS = 5000


@record
class Edge:
    """One request for a library and what the loader does with it."""

    name: str
    needed_by: str | None
    path: str | None
    via: str
    kind: str  # "needed" | "dlopen" | "preload" | "root"
    shadowed: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()
    error: str | None = None
    searched: tuple[str, ...] = ()

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "name": self.name,
            "path": self.path,
            "needed_by": self.needed_by,
            "via": self.via,
            "kind": self.kind,
            "shadowed": list(self.shadowed),
        }
        if self.skipped:
            out["skipped"] = list(self.skipped)
        if self.error:
            out["error"] = self.error
        return out


class DirEntries:
    """Whether a directory holds a name, asked name by name (``lstat``) and remembered, as ``ld.so`` opens
    candidates rather than listing directories: a system directory holds ~1,000 names, ``why`` asks ~20."""

    __slots__ = ("_known", "path")

    def __init__(self, path: str) -> None:
        self.path = path.rstrip("/")
        self._known: dict[str, bool] = {}

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str) or name in ("", ".", "..") or "/" in name:
            return False  # never a directory entry
        known = self._known.get(name)
        if known is None:
            try:
                os.lstat(f"{self.path}/{name}")
                known = True
            except (OSError, ValueError):  # ValueError: a NUL in a crafted name
                known = False
            self._known[name] = known
        return known


class LoadedObject:
    """One object in the simulated link map; mutable (names accumulate, dlopen resets the loader)."""

    __slots__ = ("identity", "info", "loader", "names", "path")

    def __init__(
        self,
        *,
        path: str,
        info: elf.ElfInfo,
        loader: LoadedObject | None,
        names: set[str],
        identity: tuple[int, int] = (0, 0),
    ) -> None:
        self.path = path  # as opened (root-relative); $ORIGIN derives from it, not from the realpath
        self.info = info
        self.loader = loader
        self.names = names
        self.identity = identity

    def __repr__(self) -> str:
        return f"LoadedObject(path={self.path!r})"


class Resolver:
    """Loads a root object (and optional dlopens) into a simulated link-map namespace."""

    def __init__(self, config: LoaderConfig) -> None:
        self.config = config
        self.root = config.root
        self.objects: list[LoadedObject] = []
        self.edges: list[Edge] = []
        self.main: LoadedObject | None = None
        self._dirs: dict[str, DirEntries | None] = {}
        self._dirs_by_identity: dict[tuple[int, int], DirEntries | None] = {}
        self._subdirs_of: dict[str, list[tuple[str, DirEntries]]] = {}
        self._elf: dict[str, tuple[elf.ElfInfo | None, str | None, tuple[int, int]]] = {}
        self._elf_by_identity: dict[tuple[int, int], elf.ElfInfo] = {}
        self._by_identity: dict[tuple[int, int], LoadedObject] = {}
        # Every name and SONAME an object answers to, first object first: what glibc's _dl_name_match_p
        # finds walking the link map, without the walk for every name searched.
        self._by_name: dict[str, LoadedObject] = {}
        self._cache: ldcache.CacheIndex | None = None
        self._cache_hits: dict[str, tuple[str, ...]] = {}
        self._path_lists: dict[tuple[str, str | None, str], list[str]] = {}
        self._cache_flags = ldcache.DEFAULT_FLAGS.get(os.uname().machine, 0x0303)

    # -- filesystem, cached like glibc's r_dir_status ------------------------------------------------
    def _listing(self, directory: str) -> DirEntries | None:
        if directory not in self._dirs:
            # Merged-/usr systems reach one directory by two names (/lib/x86_64-linux-gnu and
            # /usr/lib/x86_64-linux-gnu, ~1,000 entries each): each directory is asked about once.
            host = fsroot.host_path(self.root, directory or ".")  # resolved once: links walked by hand
            try:
                st = os.stat(host)
                ident = (st.st_dev, st.st_ino)
                if ident not in self._dirs_by_identity:
                    readable = stat.S_ISDIR(st.st_mode) and os.access(host, os.R_OK)
                    self._dirs_by_identity[ident] = DirEntries(host) if readable else None
                self._dirs[directory] = self._dirs_by_identity[ident]
            except OSError:
                self._dirs[directory] = None
        return self._dirs[directory]

    def _inspect(self, path: str) -> tuple[elf.ElfInfo | None, str | None, tuple[int, int]]:
        """(info, error, identity); error is None with info None when the file cannot be opened."""
        if path not in self._elf:
            host = fsroot.host_path(self.root, path)
            try:
                st = os.stat(host)
                ident = (st.st_dev, st.st_ino)
                if not stat.S_ISREG(st.st_mode):
                    result: tuple[elf.ElfInfo | None, str | None, tuple[int, int]] = (
                        None,
                        "cannot read file data: Is a directory",
                        ident,
                    )
                elif ident in self._elf_by_identity:
                    # One file under two names (merged /usr: /lib/x86_64-linux-gnu/libc.so.6 is
                    # /usr/lib/x86_64-linux-gnu/libc.so.6): parsed once.
                    result = (self._elf_by_identity[ident], None, ident)
                else:
                    result = (elf.read_elf(host), None, ident)
                    self._elf_by_identity[ident] = result[0]
            except elf.ElfError as exc:
                result = (None, str(exc), (0, 0))
            except OSError:
                result = (None, None, (0, 0))
            self._elf[path] = result
        return self._elf[path]

    def _ld_cache(self) -> ldcache.CacheIndex:
        """The image's ld.so.cache, read once (an empty index when it is absent or malformed)."""
        if self._cache is None:
            path = fsroot.host_path(self.root, self.config.cache_path)
            self._cache = ldcache.load_index(path) or ldcache.CacheIndex(b"", [])
        return self._cache

    def _ld_cache_lookup(self, name: str) -> tuple[str, ...]:
        """Cache hits for ``name``, decoded on first use."""
        if name not in self._cache_hits:
            self._cache_hits[name] = self._ld_cache().lookup(
                name, default_flags=self._cache_flags, active_hwcaps=self.config.hwcaps
            )
        return self._cache_hits[name]

    def cache_keys(self) -> tuple[str, ...]:
        return self._ld_cache().keys()

    # -- path lists ----------------------------------------------------------------------------------
    def expand(self, text: str, origin: str | None) -> str | None:
        """Dynamic string tokens; ``None`` when a known token has no value (glibc drops the element)."""
        if "$" not in text:
            return text
        out = []
        i = 0
        values = {"ORIGIN": origin, "LIB": self.config.dst_lib, "PLATFORM": self.config.platform}
        while i < len(text):
            ch = text[i]
            if ch != "$":
                out.append(ch)
                i += 1
                continue
            matched = False
            for token, value in values.items():
                for form in (token, "{" + token + "}"):
                    end = i + 1 + len(form)
                    if text.startswith(form, i + 1) and (
                        form.endswith("}")
                        or end >= len(text)
                        or not (text[end].isalnum() or text[end] == "_")
                    ):
                        if value is None:
                            return None
                        out.append(value)
                        i = end
                        matched = True
                        break
                if matched:
                    break
            if not matched:
                out.append(ch)
                i += 1
        return "".join(out)

    def _dirs_of(self, text: str, origin: str | None, seps: str) -> list[str]:
        """The directories of a path list (RPATH, RUNPATH, LD_LIBRARY_PATH), tokens expanded; worked out once
        per list and origin, not once per name searched (a torch tree searches ~50 names through ~5 lists)."""
        key = (text, origin, seps)
        found = self._path_lists.get(key)
        if found is None:
            found = self._path_lists[key] = self._split_path_list(text, origin, seps)
        return found

    def _split_path_list(self, text: str, origin: str | None, seps: str) -> list[str]:
        elements = [text]
        for sep in seps[1:]:
            elements = [p for e in elements for p in e.split(sep)]
        elements = [p for e in elements for p in e.split(seps[0])]
        out: list[str] = []
        for raw in elements:
            if raw == "":
                d = ""  # empty element: the current directory
            else:
                expanded = self.expand(raw, origin)
                if not expanded:
                    continue
                d = expanded.rstrip("/") or "/"
            if d not in out:
                out.append(d)
        return out

    def _origin(self, obj: LoadedObject) -> str:
        return fsroot.dirname(obj.path)

    def _abs(self, d: str) -> str:
        if d.startswith("/"):
            return d
        return posixpath.normpath(posixpath.join(self.config.cwd, d)) if d else self.config.cwd

    # -- candidates ----------------------------------------------------------------------------------
    def _in_dir(self, d: str, name: str) -> list[str]:
        """Paths glibc would try in directory ``d`` that exist, in its order (hwcaps first)."""
        base = self._abs(d)
        listing = self._listing(base)
        if listing is None:
            return []
        found = [f"{sub_dir}/{name}" for sub_dir, entries in self._subdirs(base, listing) if name in entries]
        if name in listing:
            found.append(f"{base.rstrip('/')}/{name}")
        # Relative elements (and the empty one, the cwd) are reported as absolute paths.
        return found

    def _subdirs(self, base: str, listing: DirEntries) -> list[tuple[str, DirEntries]]:
        """The hwcaps subdirectories of ``base`` that exist, in glibc's order: glibc-hwcaps/<name> first,
        then (before 2.37) the legacy ones. Found once per directory, not once per name looked up there
        (a 2.36 loader has 15 legacy subdirectories to consider)."""
        if base not in self._subdirs_of:
            out: list[tuple[str, DirEntries]] = []
            prefix = base.rstrip("/")
            if self.config.hwcaps and "glibc-hwcaps" in listing:
                for sub in self.config.hwcaps:
                    entries = self._listing(f"{prefix}/glibc-hwcaps/{sub}")
                    if entries is not None:
                        out.append((f"{prefix}/glibc-hwcaps/{sub}", entries))
            for sub in self.config.legacy_subdirs:
                if sub.split("/", 1)[0] not in listing:
                    continue
                entries = self._listing(f"{prefix}/{sub}")
                if entries is not None:
                    out.append((f"{prefix}/{sub}", entries))
            self._subdirs_of[base] = out
        return self._subdirs_of[base]

    def _steps(self, requester: LoadedObject | None, name: str) -> list[tuple[str, list[str]]]:
        """(via, directories) in search order; the cache step carries file paths instead."""
        steps: list[tuple[str, list[str]]] = []
        has_runpath = requester is not None and requester.info.runpath is not None
        if not has_runpath:
            dirs: list[str] = []
            seen_main = False
            chain = requester
            while chain is not None:
                if chain.info.rpath is not None and chain.info.runpath is None:
                    dirs += self._dirs_of(chain.info.rpath, self._origin(chain), ":")
                seen_main |= chain is self.main
                chain = chain.loader
            main = self.main
            if (
                not seen_main
                and main is not None
                and main.info.rpath is not None
                and main.info.runpath is None
            ):
                dirs += self._dirs_of(main.info.rpath, self._origin(main), ":")
            steps.append(("rpath", dirs))
        if self.config.ld_library_path:
            main_origin = self._origin(self.main) if self.main else None
            steps.append(("ld_library_path", self._dirs_of(self.config.ld_library_path, main_origin, ":;")))
        if requester is not None and requester.info.runpath is not None:
            steps.append(("runpath", self._dirs_of(requester.info.runpath, self._origin(requester), ":")))
        nodeflib = requester is not None and requester.info.nodeflib
        cached = list(self._ld_cache_lookup(name))
        if nodeflib:
            cached = [p for p in cached if fsroot.dirname(p) not in self.config.system_dirs]
        steps.append(("ld_so_cache", cached))
        if not nodeflib:
            steps.append(("default_dirs", list(self.config.system_dirs)))
        return steps

    def _match_loaded(self, name: str) -> LoadedObject | None:
        return self._by_name.get(name)

    def _append(self, obj: LoadedObject) -> None:
        """Add ``obj`` to the link map, answering to its names and SONAME (an earlier object keeps a name)."""
        self.objects.append(obj)
        for name in (*obj.names, *((obj.info.soname,) if obj.info.soname else ())):
            self._by_name.setdefault(name, obj)

    def _answer_to(self, obj: LoadedObject, name: str) -> None:
        obj.names.add(name)
        self._by_name.setdefault(name, obj)

    def _target(self) -> elf.ElfInfo | None:
        return self.main.info if self.main else None

    def search(
        self, requester: LoadedObject | None, name: str, *, kind: str
    ) -> tuple[Edge, LoadedObject | None]:
        needed_by = requester.path if requester else None
        obj = self._match_loaded(name)
        if obj is not None:
            return Edge(name=name, needed_by=needed_by, path=obj.path, via="already_loaded", kind=kind), obj
        origin = self._origin(requester) if requester else None
        expanded = self.expand(name, origin) if "$" in name else name
        if expanded is None:
            return Edge(name=name, needed_by=needed_by, path=None, via="not_found", kind=kind), None
        if "/" in expanded:
            return self._open_direct(requester, name, self._abs(expanded), kind=kind)
        winner, error, shadowed, skipped, searched = self._scan(requester, name)
        if winner is None:
            return _not_found(name, needed_by, kind, skipped, searched), None
        via, path = winner
        if error is not None:
            edge = Edge(
                name=name,
                needed_by=needed_by,
                path=path,
                via=via,
                kind=kind,
                shadowed=tuple(shadowed),
                skipped=tuple(skipped),
                error=error,
                searched=tuple(searched),
            )
            return edge, None
        loaded = self._add(path, name, requester)
        edge = Edge(
            name=name,
            needed_by=needed_by,
            path=loaded.path,
            via=via if loaded.path == path else "already_loaded",
            kind=kind,
            shadowed=tuple(shadowed),
            skipped=tuple(skipped),
            searched=tuple(searched),
        )
        return edge, loaded

    def _scan(
        self, requester: LoadedObject | None, name: str
    ) -> tuple[tuple[str, str] | None, str | None, list[str], list[str], list[str]]:
        """The loader's search for ``name`` on behalf of ``requester``: the winner (via, path), an error the
        winner gives, and the copies shadowed, skipped and directories searched. Adds nothing."""
        winner: tuple[str, str] | None = None
        error: str | None = None
        shadowed: list[str] = []
        skipped: list[str] = []
        searched: list[str] = []
        seen: set[tuple[int, int]] = set()
        target = self._target()
        for via, entries in self._steps(requester, name):
            for entry in entries:
                candidates = [entry] if via == "ld_so_cache" else self._in_dir(entry, name)
                if via != "ld_so_cache":
                    searched.append(entry or ".")
                for cand in candidates:
                    info, err, ident = self._inspect(self._abs(cand))
                    if info is None and err is None:
                        continue  # cannot be opened: glibc moves on
                    if info is not None and target is not None and not target.same_target(info):
                        skipped.append(f"{cand} (wrong ELF class or machine: {info.machine_name})")
                        continue
                    if ident in seen:
                        continue
                    if ident != (0, 0):
                        seen.add(ident)
                    if winner is None and error is None:
                        if err is not None:
                            error = f"{cand}: {err}"
                            winner = (via, cand)
                        else:
                            winner = (via, cand)
                    else:
                        shadowed.append(cand)
        return winner, error, shadowed, skipped, searched

    def lookup(self, name: str) -> Edge:
        """What ``dlopen(name)`` from the executable would pick in a process that has loaded nothing else
        yet (the answer for a program that is not the framework): nothing is added to the namespace."""
        winner, error, shadowed, skipped, searched = self._scan(self.main, name)
        needed_by = self.main.path if self.main else None
        if winner is None:
            return _not_found(name, needed_by, "dlopen", skipped, searched)
        via, path = winner
        return Edge(name=name, needed_by=needed_by, path=path, via=via, kind="dlopen", shadowed=tuple(shadowed),
                    skipped=tuple(skipped), searched=tuple(searched), error=error)  # fmt: skip

    def _open_direct(
        self, requester: LoadedObject | None, name: str, path: str, *, kind: str
    ) -> tuple[Edge, LoadedObject | None]:
        needed_by = requester.path if requester else None
        info, err, _ident = self._inspect(path)
        via = "direct"
        if info is None:
            return (
                Edge(
                    name=name,
                    needed_by=needed_by,
                    path=None,
                    via="not_found",
                    kind=kind,
                    error=f"{path}: {err or 'cannot open shared object file'}",
                ),
                None,
            )
        existing = self._match_loaded(path)
        if existing is not None:
            return Edge(
                name=name, needed_by=needed_by, path=existing.path, via="already_loaded", kind=kind
            ), existing
        loaded = self._add(path, name, requester)
        if loaded.path != path:
            via = "already_loaded"
        return Edge(name=name, needed_by=needed_by, path=loaded.path, via=via, kind=kind), loaded

    def _add(self, path: str, name: str, loader: LoadedObject | None) -> LoadedObject:
        info, _err, ident = self._inspect(self._abs(path))
        assert info is not None
        if ident in self._by_identity:
            existing = self._by_identity[ident]
            self._answer_to(existing, name)
            return existing
        obj = LoadedObject(path=path, info=info, loader=loader, names={name, path}, identity=ident)
        self._append(obj)
        if ident != (0, 0):
            self._by_identity[ident] = obj
        return obj

    # -- public --------------------------------------------------------------------------------------
    def load_root(self, path: str, *, preload: tuple[str, ...] = ()) -> Edge:
        """Map ``path`` as the executable (what ``ldd`` does), then its dependency tree, BFS."""
        path = self._abs(path)
        info, err, ident = self._inspect(path)
        if info is None:
            raise elf.ElfError(err or "cannot open file")
        self.main = LoadedObject(path=path, info=info, loader=None, names={path}, identity=ident)
        self._append(self.main)
        if ident != (0, 0):
            self._by_identity[ident] = self.main
        interp = info.interp or self.config.interpreter
        if interp:
            iinfo, _e, iident = self._inspect(interp)
            if iinfo is not None and iident not in self._by_identity:
                obj = LoadedObject(path=interp, info=iinfo, loader=None, names={interp}, identity=iident)
                self._append(obj)
                self._by_identity[iident] = obj
        edge = Edge(name=path, needed_by=None, path=path, via="direct", kind="root")
        queue = [self.main]
        for name in preload or self._env_preloads():
            pedge, pobj = self.search(self.main, name, kind="preload")
            self.edges.append(pedge)
            if pobj is not None and pedge.via != "already_loaded":
                queue.append(pobj)
        self._bfs(queue)
        return edge

    def _env_preloads(self) -> tuple[str, ...]:
        raw = self.config.ld_preload or ""
        return tuple(p for p in raw.replace(":", " ").split() if p)

    def dlopen(self, caller: LoadedObject | None, name: str) -> Edge:
        """``dlopen(name)`` issued by code in ``caller``; the new object gets no loader chain."""
        edge, obj = self.search(caller, name, kind="dlopen")
        if obj is not None and edge.via != "already_loaded":
            obj.loader = None  # __RTLD_CALLMAP: dlopened objects start a fresh RPATH chain
            self._bfs([obj])
        self.edges.append(edge)
        return edge

    def _bfs(self, queue: list[LoadedObject]) -> None:
        # A list walked by index is the FIFO here: collections.deque would cost an import.
        i = 0
        while i < len(queue) and len(self.objects) < _MAX_OBJECTS:
            obj = queue[i]
            i += 1
            for name in obj.info.needed:
                edge, dep = self.search(obj, name, kind="needed")
                self.edges.append(edge)
                if dep is not None and edge.via != "already_loaded":
                    queue.append(dep)

    def find(self, soname_prefix: str) -> LoadedObject | None:
        for obj in self.objects:
            names = {obj.info.soname or "", posixpath.basename(obj.path)}
            if any(n.startswith(soname_prefix) for n in names):
                return obj
        return None


def _not_found(name: str, needed_by: str | None, kind: str, skipped: list[str], searched: list[str]) -> Edge:
    return Edge(
        name=name,
        needed_by=needed_by,
        path=None,
        via="not_found",
        kind=kind,
        skipped=tuple(skipped),
        searched=tuple(searched),
        error=f"{name}: cannot open shared object file",
    )


def why(path: str, config: LoaderConfig) -> Resolver:
    """Resolve ``path``'s whole tree plus the dlopen edges that matter for CUDA."""
    resolver = Resolver(config)
    resolver.load_root(path)
    add_cuda_dlopens(resolver)
    return resolver


def add_cuda_dlopens(resolver: Resolver) -> None:
    """libcudart dlopens ``libcuda.so.1`` lazily at the first driver call, from its own link map."""
    cudart = resolver.find("libcudart.so")
    if cudart is not None:
        resolver.dlopen(cudart, "libcuda.so.1")
