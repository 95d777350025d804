"""Load the compatibility data files into frozen records, one file at a time and only when asked.

Standard library only (``tomllib``): the doctor uses these facts inside slim images. A malformed row is
reported as ``file:line: message`` (``DataError``, exit code 2).
"""

from __future__ import annotations

import os

from imagesmith import parsecache
from imagesmith.errors import DataError, UnknownName
from imagesmith.matrix.model import (
    CONFIDENCES,
    FORWARD_COMPAT,
    SEGMENTS,
    Architecture,
    CompatPackage,
    CudaFamily,
    CudnnRelease,
    DriverBranch,
    FrameworkBuild,
    FrameworkRelease,
    Gpu,
    NvccTargets,
    Provenance,
    Toolkit,
)
from imagesmith.matrix.versions import NvVersion

# What a verdict needs stays off typing, pathlib, re, hashlib, pickle, tomllib and functools (each 4-16 ms
# to import on a slow machine, functools through collections): the parsed files come back from a marshal
# cache, paths are strings, and the two caches below stand in for functools' (type checkers see those).
TYPE_CHECKING = False  # mypy treats this name as True
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from functools import cache, cached_property
    from typing import Any, TypeVar

    T = TypeVar("T")
else:

    class cached_property:
        """functools.cached_property: computed once per instance, then an ordinary attribute."""

        def __init__(self, fn):
            self.fn = fn
            self.__doc__ = fn.__doc__

        def __set_name__(self, owner, name):
            self.name = name

        def __get__(self, obj, owner=None):
            if obj is None:
                return self
            value = obj.__dict__[self.name] = self.fn(obj)
            return value

    def cache(fn):
        """functools.cache for methods of long-lived objects: one memo per instance, keyed by the arguments."""

        def cached(self, *args):
            memo = self.__dict__.setdefault("_memo", {})
            key = (fn.__name__, args)
            try:
                return memo[key]
            except KeyError:
                value = memo[key] = fn(self, *args)
                return value

        cached.__name__, cached.__doc__ = fn.__name__, fn.__doc__
        return cached


DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
FRAMEWORKS = ("torch", "tensorflow", "jax")
FRAMEWORK_ALIASES = {"pytorch": "torch", "tf": "tensorflow", "tensorflow-gpu": "tensorflow", "jaxlib": "jax"}


class Row:
    """One table of an array of tables, with its file:line for error messages."""

    def __init__(self, data: dict[str, Any], file: str, line: int | None, sources: dict[str, str]) -> None:
        self.data = data
        self.file = file
        self.line = line
        self._sources = sources

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file

    def fail(self, message: str) -> DataError:
        return DataError(message, where=self.where)

    def get(self, key: str, kind: type[T], *, required: bool = True) -> T | None:
        if key not in self.data:
            if required:
                raise self.fail(f"missing required key {key!r}")
            return None
        value = self.data[key]
        # TOML integers are acceptable where floats are expected (memory_gb = 80).
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            return value  # type: ignore[return-value]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise self.fail(f"{key!r} must be a {kind.__name__}, got {value!r}")
        return value

    def req(self, key: str, kind: type[T]) -> T:
        value = self.get(key, kind)
        assert value is not None
        return value

    def version(self, key: str, *, required: bool = True, capability: bool = False) -> NvVersion | None:
        text = self.get(key, str, required=required)
        if text is None:
            return None
        try:
            return NvVersion.capability(text) if capability else NvVersion.parse(text)
        except ValueError as exc:
            raise self.fail(f"{key!r}: {exc}") from None

    def req_version(self, key: str, *, capability: bool = False) -> NvVersion:
        value = self.version(key, capability=capability)
        assert value is not None
        return value

    def capabilities(self, key: str) -> tuple[NvVersion, ...]:
        items = self.get(key, list)
        assert items is not None
        out = []
        for item in items:
            try:
                out.append(NvVersion.capability(str(item)))
            except ValueError as exc:
                raise self.fail(f"{key!r}: {exc}") from None
        return tuple(out)

    def ints(self, key: str) -> tuple[int, ...]:
        items = self.get(key, list)
        assert items is not None
        if not all(isinstance(i, int) and not isinstance(i, bool) for i in items):
            raise self.fail(f"{key!r} must be a list of integers")
        return tuple(items)

    def strings(self, key: str, *, required: bool = True) -> tuple[str, ...]:
        items = self.get(key, list, required=required)
        if items is None:
            return ()
        if not all(isinstance(i, str) for i in items):
            raise self.fail(f"{key!r} must be a list of strings")
        return tuple(items)

    def provenance(self) -> Provenance:
        ids = self.data.get("source")
        if isinstance(ids, str):
            ids = [ids]
        if not isinstance(ids, list) or not ids:
            raise self.fail("every row needs source = [ids from [sources]]")
        citations = []
        for source_id in ids:
            if source_id not in self._sources:
                raise self.fail(f"source {source_id!r} is not in this file's [sources]")
            citations.append(f"{source_id}: {self._sources[source_id]}")
        confidence = self.data.get("confidence")
        if confidence not in CONFIDENCES:
            raise self.fail(f"confidence must be one of {', '.join(CONFIDENCES)}, got {confidence!r}")
        return Provenance(file=self.file, line=self.line, source=tuple(citations), confidence=confidence)


def _parse(text: str, name: str) -> tuple[dict[str, Any], dict[str, list[int]]]:
    import re
    import tomllib

    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib says "... (at line N, column M)"; keep the file:line form.
        match = re.search(r"at line (\d+)", str(exc))
        where = f"{name}:{match.group(1)}" if match else name
        raise DataError(f"invalid TOML: {str(exc).split(' (at line')[0]}", where=where) from None
    header_lines: dict[str, list[int]] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        found = re.match(r"\s*\[\[\s*([A-Za-z0-9_.-]+)\s*\]\]", line)
        if found:
            header_lines.setdefault(found.group(1), []).append(number)
    return doc, header_lines


def _parse_cached(data: bytes, name: str) -> tuple[dict[str, Any], dict[str, list[int]]]:
    """tomllib is pure Python (~20 ms for all files, ~16 ms more to import): read the parse back."""
    return parsecache.cached(data, f"matrix-{name}", lambda raw: _parse(raw.decode("utf-8"), name))


def read_rows(path: str | os.PathLike[str]) -> dict[str, list[Row]]:
    """Parse one TOML data file into rows per array-of-tables name, each knowing its line."""
    path = os.fspath(path)
    name = os.path.basename(path)
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise DataError(f"cannot read: {exc.strerror}", where=path) from None
    try:
        doc, header_lines = _parse_cached(data, name)
    except UnicodeDecodeError:
        raise DataError("not UTF-8 text", where=name) from None
    sources = doc.get("sources", {})
    if not isinstance(sources, dict) or not all(isinstance(v, str) for v in sources.values()):
        raise DataError("[sources] must map ids to citation strings", where=name)
    tables: dict[str, list[Row]] = {}
    for key, value in doc.items():
        if key == "sources" or not isinstance(value, list):
            continue
        lines = header_lines.get(key, [])
        rows = []
        for index, item in enumerate(value):
            row_line = lines[index] if index < len(lines) else None
            if not isinstance(item, dict):
                where = f"{name}:{row_line}" if row_line else name
                raise DataError(f"{key} entries must be tables", where=where)
            rows.append(Row(item, name, row_line, sources))
        tables[key] = rows
    return tables


def _close(value: str, names: list[str], cutoff: float) -> list[str]:
    import difflib  # only on the way to an error: the doctor and the verdicts never need it

    return difflib.get_close_matches(value, names, n=3, cutoff=cutoff)


def _normalise(name: str) -> str:
    text = "".join(ch for ch in name.lower() if ch.isascii() and ch.isalnum())
    for prefix in ("nvidia", "geforce", "tesla"):
        if text.startswith(prefix) and len(text) > len(prefix):
            text = text[len(prefix) :]
    return text


class Knowledge:
    """All compatibility facts. Each file is parsed the first time one of its facts is needed."""

    def __init__(self, data_dir: str | os.PathLike[str] = DATA_DIR) -> None:
        self.data_dir = os.fspath(data_dir)

    def _rows(self, file: str, table: str) -> Iterator[Row]:
        yield from self._file(file).get(table, [])

    @cache
    def _file(self, file: str) -> dict[str, list[Row]]:
        return read_rows(os.path.join(self.data_dir, file))

    def _unique(self, rows: list[T], key: Callable[[T], object], what: str) -> None:
        seen: dict[object, T] = {}
        for row in rows:
            k = key(row)
            if k in seen:
                prov = getattr(row, "provenance", None)
                raise DataError(f"duplicate {what} {k}", where=prov.where if prov else None)
            seen[k] = row

    # ---- CUDA ---------------------------------------------------------------------------------------
    @cached_property
    def families(self) -> dict[int, CudaFamily]:
        out = {}
        for row in self._rows("cuda.toml", "family"):
            mvc = row.req("minor_version_compatibility", bool)
            family = CudaFamily(
                major=row.req("major", int),
                minor_version_compatibility=mvc,
                mvc_min_driver=row.version("mvc_min_driver", required=mvc),
                libcudart_soname=row.req("libcudart_soname", str),
                provenance=row.provenance(),
            )
            out[family.major] = family
        return out

    def family(self, major: int) -> CudaFamily | None:
        return self.families.get(major)

    @cached_property
    def toolkits(self) -> tuple[Toolkit, ...]:
        rows = [
            Toolkit(
                version=row.req_version("version"),
                released=row.get("released", str, required=False),
                min_driver=row.version("min_driver", required=False),
                provenance=row.provenance(),
            )
            for row in self._rows("cuda.toml", "toolkit")
        ]
        self._unique(rows, lambda t: t.version, "toolkit")
        return tuple(sorted(rows, key=lambda t: t.version))

    @cache
    def toolkit_min_driver(self, cuda: NvVersion) -> Toolkit | None:
        """The Table-3 row for a toolkit: exact update if given (12.6.3), else the minor's first release."""
        exact = [t for t in self.toolkits if t.version == cuda and len(cuda.parts) > 2]
        if exact:
            return exact[0]
        same_minor = [t for t in self.toolkits if t.version.truncate(2) == cuda.truncate(2) and t.min_driver]
        return same_minor[0] if same_minor else None

    @cached_property
    def nvcc_targets(self) -> tuple[NvccTargets, ...]:
        rows = [
            NvccTargets(
                since=row.req_version("since"),
                capabilities=row.capabilities("capabilities"),
                provenance=row.provenance(),
            )
            for row in self._rows("cuda.toml", "nvcc_targets")
        ]
        return tuple(sorted(rows, key=lambda r: r.since))

    def nvcc_capabilities(self, cuda: NvVersion) -> NvccTargets | None:
        current = None
        for row in self.nvcc_targets:
            if row.since <= cuda.truncate(2):
                current = row
        return current

    # ---- drivers ------------------------------------------------------------------------------------
    @cached_property
    def branches(self) -> tuple[DriverBranch, ...]:
        rows = [
            DriverBranch(
                branch=row.req("branch", int),
                max_cuda=row.req_version("max_cuda"),
                lifecycle=row.get("lifecycle", str, required=False),
                provenance=row.provenance(),
            )
            for row in self._rows("drivers.toml", "branch")
        ]
        self._unique(rows, lambda b: b.branch, "branch")
        return tuple(sorted(rows, key=lambda b: b.branch))

    def branch_for(self, driver: NvVersion) -> DriverBranch | None:
        """The driver's branch row; for a branch we have no row for, the closest older one."""
        best = None
        for row in self.branches:
            if row.branch <= driver.major:
                best = row
        return best

    def driver_max_cuda(self, driver: NvVersion) -> NvVersion | None:
        row = self.branch_for(driver)
        return row.max_cuda if row else None

    @cached_property
    def compat_packages(self) -> tuple[CompatPackage, ...]:
        rows = [
            CompatPackage(
                package=row.req("package", str),
                cuda=row.req_version("cuda"),
                supported_branches=row.ints("supported_branches"),
                provenance=row.provenance(),
            )
            for row in self._rows("drivers.toml", "compat_package")
        ]
        return tuple(sorted(rows, key=lambda p: p.cuda))

    def find_compat_package(self, text: str) -> CompatPackage:
        """``12-8``, ``12.8`` or ``cuda-compat-12-8``."""
        wanted = text.strip().removeprefix("cuda-compat-").replace("-", ".")
        for package in self.compat_packages:
            if str(package.cuda.truncate(2)) == wanted:
                return package
        names = [p.package.removeprefix("cuda-compat-") for p in self.compat_packages]
        raise UnknownName("cuda-compat package", text, _close(text, names, 0.3))

    # ---- GPUs ---------------------------------------------------------------------------------------
    @cached_property
    def architectures(self) -> dict[str, Architecture]:
        out = {}
        for row in self._rows("gpus.toml", "architecture"):
            arch = Architecture(
                name=row.req("name", str),
                capabilities=row.capabilities("capabilities"),
                last_driver_branch=row.get("last_driver_branch", int, required=False),
                first_cuda=row.version("first_cuda", required=False),
                provenance=row.provenance(),
            )
            out[arch.name] = arch
        return out

    def architecture_for(self, capability: NvVersion) -> Architecture | None:
        for arch in self.architectures.values():
            if capability in arch.capabilities:
                return arch
        return None

    @cached_property
    def gpus(self) -> tuple[Gpu, ...]:
        return tuple(self._gpu(row) for row in self._rows("gpus.toml", "gpu"))

    def _gpu(self, row: Row) -> Gpu:
        segment = row.req("segment", str)
        if segment not in SEGMENTS:
            raise row.fail(f"segment must be one of {', '.join(SEGMENTS)}, got {segment!r}")
        forward = row.req("forward_compat", str)
        if forward not in FORWARD_COMPAT:
            raise row.fail(f"forward_compat must be one of {', '.join(FORWARD_COMPAT)}, got {forward!r}")
        architecture = row.req("architecture", str)
        if architecture not in self.architectures:
            raise row.fail(f"architecture {architecture!r} has no [[architecture]] row")
        return Gpu(
            name=row.req("name", str),
            aliases=row.strings("aliases", required=False),
            capability=row.req_version("capability", capability=True),
            architecture=architecture,
            memory_gb=row.get("memory_gb", float, required=False),
            segment=segment,
            forward_compat=forward,
            min_cuda=row.version("min_cuda", required=False),
            provenance=row.provenance(),
        )

    @cached_property
    def _gpu_index(self) -> dict[str, Gpu]:
        index: dict[str, Gpu] = {}
        for gpu in self.gpus:
            for name in (gpu.name, *gpu.aliases):
                key = _normalise(name)
                other = index.get(key)
                if other is not None and other is not gpu:
                    where = gpu.provenance.where if gpu.provenance else None
                    raise DataError(f"GPU name {name!r} also names {other.name!r}", where=where)
                index[key] = gpu
        return index

    def gpu_or_none(self, name: str) -> Gpu | None:
        key = _normalise(name)
        if "_gpu_index" in self.__dict__ or "gpus" in self.__dict__:
            return self._gpu_index.get(key)
        # One question (the doctor's, a matrix check's): build only the row that answers it, not all ~60.
        # Names that collide are a data error `matrix validate` reports; the first row wins here.
        for row in self._rows("gpus.toml", "gpu"):
            names = [row.data.get("name"), *(row.data.get("aliases") or ())]
            if any(isinstance(n, str) and _normalise(n) == key for n in names):
                return self._gpu(row)
        return None

    def find_gpu(self, query: str) -> Gpu:
        """A GPU by name or alias (any case and punctuation), or any GPU of a compute capability."""
        gpu = self.gpu_or_none(query)
        if gpu is not None:
            return gpu
        try:
            capability = NvVersion.capability(query)
        except ValueError:
            keys = list(self._gpu_index)
            close = _close(_normalise(query), keys, 0.5)
            names = list(dict.fromkeys(self._gpu_index[k].name for k in close))
            raise UnknownName("GPU", query, names, where="--gpu") from None
        arch = self.architecture_for(capability)
        if arch is None:
            known = sorted({str(c) for a in self.architectures.values() for c in a.capabilities})
            raise UnknownName("compute capability", query, known[-3:], where="--gpu")
        return Gpu(
            name=f"any {capability.sm} GPU",
            aliases=(),
            capability=capability,
            architecture=arch.name,
            memory_gb=None,
            segment="unknown",
            forward_compat="unknown",
            min_cuda=arch.first_cuda,
            provenance=None,
        )

    # ---- frameworks ---------------------------------------------------------------------------------
    @staticmethod
    def framework_name(name: str) -> str | None:
        key = name.strip().lower()
        key = FRAMEWORK_ALIASES.get(key, key)
        return key if key in FRAMEWORKS else None

    @cache
    def releases(self, framework: str) -> tuple[FrameworkRelease, ...]:
        rows = []
        for row in self._rows(f"{framework}.toml", "release"):
            python = row.req("python", str)
            rows.append(
                FrameworkRelease(
                    framework=framework,
                    version=row.req("version", str),
                    patches=row.strings("patches", required=False),
                    python=python,
                    python_experimental=row.strings("python_experimental", required=False),
                    pypi_default=row.get("pypi_default", str, required=False),
                    provenance=row.provenance(),
                )
            )
        self._unique(rows, lambda r: r.version, f"{framework} release")
        return tuple(rows)

    @cache
    def builds(self, framework: str) -> tuple[FrameworkBuild, ...]:
        known = {r.version for r in self.releases(framework)}
        rows = []
        for row in self._rows(f"{framework}.toml", "build"):
            release = row.req("release", str)
            if release not in known:
                raise row.fail(f"build names release {release!r}, which has no [[release]] row")
            rows.append(
                FrameworkBuild(
                    framework=framework,
                    release=release,
                    variant=row.req("variant", str),
                    cuda=row.req_version("cuda"),
                    cudnn=row.version("cudnn", required=False),
                    sass=row.capabilities("sass"),
                    ptx=row.capabilities("ptx"),
                    role=row.get("role", str, required=False),
                    provenance=row.provenance(),
                )
            )
        self._unique(rows, lambda b: (b.release, b.variant), f"{framework} build")
        return tuple(rows)

    @cached_property
    def cudnn(self) -> tuple[CudnnRelease, ...]:
        return tuple(
            CudnnRelease(
                version=row.req_version("version"),
                cuda_majors=row.ints("cuda_majors"),
                capabilities=row.capabilities("capabilities"),
                min_driver=row.version("min_driver", required=False),
                provenance=row.provenance(),
            )
            for row in self._rows("cudnn.toml", "release")
        )

    def validate(self) -> None:
        """Load every file and every cross-reference, so data errors surface in one place."""
        _ = (self.families, self.toolkits, self.nvcc_targets, self.branches, self.compat_packages)
        _ = (self.architectures, self._gpu_index, self.cudnn)
        for framework in FRAMEWORKS:
            self.builds(framework)

    def summary(self) -> str:
        self.validate()
        parts = [
            f"{len(self.families)} CUDA families",
            f"{len(self.toolkits)} toolkits",
            f"{len(self.branches)} driver branches",
            f"{len(self.compat_packages)} cuda-compat packages",
            f"{len(self.gpus)} GPUs",
            *(f"{len(self.builds(f))} {f} builds" for f in FRAMEWORKS),
            f"{len(self.cudnn)} cuDNN releases",
        ]
        return ", ".join(parts)


_LOADED: dict[str, Knowledge] = {}


def load(data_dir: str | os.PathLike[str] | None = None) -> Knowledge:
    """The knowledge of ``data_dir`` (default: imagesmith's own), one object per directory per process."""
    key = os.fspath(data_dir) if data_dir else DATA_DIR
    known = _LOADED.get(key)
    if known is None:
        known = _LOADED[key] = Knowledge(key)
    return known
