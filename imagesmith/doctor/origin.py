"""Where a library file came from (wheel, dpkg, conda, driver mount, compat, stub) and its version.

Versions are read from files only: the owning wheel's ``*.dist-info`` name, a conda-meta record, the
dpkg database, or a fully versioned file name (``libcudart.so.12.4.127``, ``libcuda.so.550.90.07``).
"""

from __future__ import annotations

import os
import posixpath

from imagesmith.contract.record import record
from imagesmith.doctor.loader import fsroot
from imagesmith.matrix.versions import NvVersion

# family -> the names before ".so" (the file is <name>.so or <name>.so.<digits>[.<digits>...]). Matched by
# hand: the full doctor keeps ``re`` (~4 ms with enum) off its path.
FAMILIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("cuda", ("libcuda",)),
    ("nvidia-ml", ("libnvidia-ml",)),
    ("cudart", ("libcudart",)),
    ("cudnn", ("libcudnn", "libcudnn_*")),  # libcudnn_ops, libcudnn_engines_precompiled, ...
    ("cublas", ("libcublas", "libcublasLt")),
    ("nvjitlink", ("libnvJitLink",)),
    ("nvrtc", ("libnvrtc", "libnvrtc-builtins")),
    ("nccl", ("libnccl",)),
    ("cusparse", ("libcusparse", "libcusparseLt")),
    ("cufft", ("libcufft",)),
    ("curand", ("libcurand",)),
    ("cusolver", ("libcusolver",)),
    # The driver's other user-space libraries, compared with libcuda and the kernel module.
    ("nvidia-ptxjitcompiler", ("libnvidia-ptxjitcompiler",)),
    ("nvidia-nvvm", ("libnvidia-nvvm",)),
)
_LOWER = frozenset("abcdefghijklmnopqrstuvwxyz_")


def _numeric(text: str) -> NvVersion | None:
    try:
        return NvVersion.parse(text)
    except ValueError:
        return None


def family_of(filename: str) -> str | None:
    stem, so, tail = filename.partition(".so")
    if not so or (tail and not (tail[0] == "." and _numeric(tail[1:]) is not None)):
        return None
    for family, names in FAMILIES:
        for name in names:
            if name == stem:
                return family
            if name.endswith("_*") and stem.startswith(name[:-1]) and set(stem[len(name) - 1 :]) <= _LOWER:
                return family
    return None


@record
class Owner:
    origin: str
    version: str | None
    dist: str | None


class OriginIndex:
    """Lazily built maps from file path to owner; one instance per doctor run."""

    def __init__(self, root: str) -> None:
        self.root = root
        self._wheel: dict[str, dict[str, tuple[str, str]]] = {}
        self._conda: dict[str, dict[str, tuple[str, str]]] = {}
        self._dpkg: dict[str, str] | None = None
        self._dpkg_versions: dict[str, str] | None = None

    def _host(self, path: str) -> str:
        return fsroot.host_path(self.root, path)

    # -- pip wheels ----------------------------------------------------------------------------------
    def _site_packages_of(self, path: str) -> str | None:
        parts = path.split("/")
        for i in range(len(parts) - 1, 0, -1):
            if parts[i] in ("site-packages", "dist-packages"):
                return "/".join(parts[: i + 1])
        return None

    def _wheel_index(self, site: str) -> dict[str, tuple[str, str]]:
        if site not in self._wheel:
            index: dict[str, tuple[str, str]] = {}
            try:
                names = os.listdir(self._host(site))
            except OSError:
                names = []
            for entry in names:
                # Only NVIDIA's and the frameworks' dists ship CUDA libraries; RECORD files of others are skipped.
                if not entry.endswith(".dist-info") or not entry.lower().startswith(
                    ("nvidia", "torch", "jax", "tensorflow", "cupy")
                ):
                    continue
                dist, _, version = entry[: -len(".dist-info")].partition("-")
                try:
                    with open(self._host(f"{site}/{entry}/RECORD"), encoding="utf-8", errors="replace") as f:
                        for line in f:
                            rel = line.split(",", 1)[0]
                            if ".so" in rel:
                                index[posixpath.normpath(f"{site}/{rel}")] = (
                                    dist.replace("_", "-").lower(),
                                    version,
                                )
                except OSError:
                    continue
            self._wheel[site] = index
        return self._wheel[site]

    # -- conda ---------------------------------------------------------------------------------------
    def _conda_index(self, prefix: str) -> dict[str, tuple[str, str]]:
        if prefix not in self._conda:
            index: dict[str, tuple[str, str]] = {}
            meta = f"{prefix}/conda-meta"
            try:
                names = os.listdir(self._host(meta))
            except OSError:
                names = []
            for entry in names:
                if not entry.endswith(".json"):
                    continue
                try:
                    import json  # only conda environments need it

                    with open(self._host(f"{meta}/{entry}"), encoding="utf-8") as f:
                        package = json.load(f)
                    files = package.get("files", [])
                    name, version = str(package.get("name", "?")), str(package.get("version", "?"))
                except (OSError, ValueError, AttributeError):
                    continue
                for rel in files:
                    if isinstance(rel, str) and ".so" in rel:
                        index[f"{prefix}/{rel}"] = (name, version)
            self._conda[prefix] = index
        return self._conda[prefix]

    def _conda_prefix_of(self, path: str) -> str | None:
        d = posixpath.dirname(path)
        for _ in range(4):
            if os.path.isdir(self._host(f"{d}/conda-meta")):
                return d
            d = posixpath.dirname(d)
            if d == "/":
                break
        return None

    # -- dpkg ----------------------------------------------------------------------------------------
    def _dpkg_owner(self, path: str) -> tuple[str, str | None] | None:
        if self._dpkg is None:
            self._dpkg = {}
            info = "/var/lib/dpkg/info"
            try:
                names = os.listdir(self._host(info))
            except OSError:
                names = []
            interesting = ("cuda", "nvidia", "cudnn", "nccl", "libcu", "libnv", "cublas", "cufft", "curand", "cusolver",
                           "cusparse")  # fmt: skip
            for entry in names:
                if not entry.endswith(".list") or not any(word in entry for word in interesting):
                    continue
                package = entry[: -len(".list")].split(":", 1)[0]
                try:
                    with open(self._host(f"{info}/{entry}"), encoding="utf-8", errors="replace") as f:
                        for line in f:
                            if ".so" in line:
                                self._dpkg[line.rstrip("\n")] = package
                except OSError:
                    continue
        owner = self._dpkg.get(path)
        if owner is None:
            return None
        return owner, self._dpkg_version(owner)

    def _dpkg_version(self, package: str) -> str | None:
        if self._dpkg_versions is None:
            self._dpkg_versions = {}
            try:
                with open(self._host("/var/lib/dpkg/status"), encoding="utf-8", errors="replace") as f:
                    name = None
                    for line in f:
                        if line.startswith("Package: "):
                            name = line[9:].strip()
                        elif line.startswith("Version: ") and name:
                            self._dpkg_versions[name] = line[9:].strip()
            except OSError:
                pass
        return self._dpkg_versions.get(package)

    # -- public --------------------------------------------------------------------------------------
    def owner(self, path: str, realpath: str) -> Owner:
        """Origin and version of the library at ``path`` (``realpath`` is its target inside the root)."""
        filename_version = _version_from_name(posixpath.basename(realpath))
        lowered = path.lower()
        if "/stubs/" in lowered or "/stubs/" in realpath.lower():
            return Owner(origin="stub", version=filename_version, dist=None)
        if "/compat/" in lowered or "/compat/" in realpath.lower():
            return Owner(origin="compat", version=filename_version, dist=None)
        toolkit = _toolkit_of(path) or _toolkit_of(realpath)
        for candidate in (path, realpath):
            site = self._site_packages_of(candidate)
            if site is not None:
                hit = self._wheel_index(site).get(posixpath.normpath(candidate))
                if hit is not None:
                    return Owner(origin="wheel", version=hit[1], dist=f"{hit[0]} {hit[1]}")
        for candidate in (path, realpath):
            prefix = self._conda_prefix_of(candidate)
            if prefix is not None:
                hit = self._conda_index(prefix).get(candidate)
                if hit is not None:
                    return Owner(
                        origin="conda", version=filename_version or hit[1], dist=f"{hit[0]} {hit[1]}"
                    )
        for candidate in (path, realpath):
            owner = self._dpkg_owner(candidate)
            if owner is not None:
                return Owner(
                    origin="dpkg",
                    version=filename_version or _upstream(owner[1]),
                    dist=f"{owner[0]} {owner[1] or '?'}",
                )
        if toolkit is not None:
            return Owner(origin="toolkit", version=filename_version, dist=toolkit)
        base = posixpath.basename(realpath)
        if (
            base.startswith(("libcuda.so.", "libnvidia-"))
            and filename_version
            and _driver_version(filename_version)
        ):
            return Owner(origin="driver", version=filename_version, dist=None)
        return Owner(origin="unknown", version=filename_version, dist=None)


def _toolkit_of(path: str) -> str | None:
    """``/usr/local/cuda-12.1/lib64/x`` -> ``cuda-12.1``: a toolkit installed by NVIDIA's runfile or a
    container base image, which no package manager owns (a dpkg-owned one is reported as dpkg first)."""
    parts = path.split("/")
    if len(parts) > 3 and parts[1] == "usr" and parts[2] == "local" and parts[3].startswith("cuda"):
        return parts[3]
    return None


def _version_from_name(filename: str) -> str | None:
    """``libcudart.so.12.4.127`` -> ``12.4.127``: two or more numeric components after the last ``.so.``."""
    at = filename.rfind(".so.")
    tail = filename[at + 4 :] if at >= 0 else ""
    version = _numeric(tail)
    return tail if version is not None and len(version.parts) >= 2 else None


def _driver_version(text: str) -> bool:
    """A driver's version: a three-digit branch and one or two more components (535.104.05)."""
    version = _numeric(text)
    return version is not None and 100 <= version.major <= 999 and len(version.parts) in (2, 3)


def _upstream(debian_version: str | None) -> str | None:
    if not debian_version:
        return None
    text = debian_version.split(":", 1)[-1]
    return text.split("-", 1)[0]
