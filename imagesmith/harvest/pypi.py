"""The package index, read the way pip reads it: PyPI's JSON API for releases and files, PEP 658 metadata
files (the METADATA alone, without the wheel), and whole wheels only when asked, each cached by its sha256.

The edge of the harvest: everything else is pure over what this module returns.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import ssl
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imagesmith.errors import EnvironmentProblem, UsageError

PYPI = "https://pypi.org"


@dataclass(frozen=True, kw_only=True)
class Artifact:
    """One file of a release, as the index lists it."""

    project: str
    version: str
    filename: str
    url: str
    sha256: str
    size: int
    metadata_available: bool

    @property
    def is_wheel(self) -> bool:
        return self.filename.endswith(".whl")

    @property
    def platform_tags(self) -> tuple[str, ...]:
        """``manylinux_2_28_x86_64`` and friends (a wheel name's last tag, split on '.')."""
        if not self.is_wheel:
            return ()
        return tuple(self.filename.removesuffix(".whl").split("-")[-1].split("."))

    @property
    def python_tag(self) -> str:
        return self.filename.removesuffix(".whl").split("-")[-3] if self.is_wheel else ""


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def version_of(filename: str) -> str | None:
    """The version in a wheel or sdist file name (``torch-2.13.0-cp311-...whl``, ``pkg-1.0.tar.gz``)."""
    if filename.endswith(".whl"):
        parts = filename.split("-")
        return parts[1] if len(parts) >= 5 else None
    for suffix in (".tar.gz", ".zip"):
        if filename.endswith(suffix):
            stem = filename.removesuffix(suffix)
            return stem.rsplit("-", 1)[1] if "-" in stem else None
    return None


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "imagesmith" / "harvest"


class Index:
    def __init__(
        self, base: str = PYPI, *, ca_cert: Path | None = None, timeout: float = 60, cache: Path | None = None
    ) -> None:
        self.base = base.rstrip("/")
        self.timeout = timeout
        self.context = ssl.create_default_context(cafile=str(ca_cert) if ca_cert else None)
        self.cache = cache or cache_dir()
        self._listing: dict[str, tuple[Artifact, ...]] = {}

    def _get(self, url: str | urllib.request.Request) -> bytes:
        where = url if isinstance(url, str) else url.full_url
        try:
            with urllib.request.urlopen(url, timeout=self.timeout, context=self.context) as response:
                return bytes(response.read())
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                raise UsageError("not on the index", where=where) from None
            raise EnvironmentProblem(f"the index answered {exc.code} {exc.reason}", where=where) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise EnvironmentProblem(f"the index cannot be reached: {reason}", where=where) from None

    def files(self, project: str) -> tuple[Artifact, ...]:
        """Every file of the project, from the simple repository API in its JSON form (PEP 691), as pip
        reads it: any PEP 691 index or mirror answers the same way. Yanked files are left out."""
        cached = self._listing.get(project)
        if cached is not None:
            return cached
        url = f"{self.base}/simple/{normalize(project)}/"
        request = urllib.request.Request(url, headers={"Accept": "application/vnd.pypi.simple.v1+json"})
        data: Any = json.loads(self._get(request))
        out = []
        for entry in data.get("files") or ():
            if entry.get("yanked"):
                continue
            filename = str(entry["filename"])
            version = version_of(filename)
            if version is None:
                continue
            metadata = entry.get("core-metadata", entry.get("dist-info-metadata"))
            out.append(
                Artifact(
                    project=project,
                    version=version,
                    filename=filename,
                    url=urllib.parse.urljoin(url, str(entry["url"])),
                    sha256=str((entry.get("hashes") or {}).get("sha256", "")),
                    size=int(entry.get("size") or 0),
                    metadata_available=bool(metadata),
                )
            )
        self._listing[project] = tuple(out)
        return self._listing[project]

    def versions(self, project: str) -> tuple[str, ...]:
        """Every version with at least one file that is not yanked, oldest first (PEP 440 order)."""
        from packaging.version import InvalidVersion, Version

        def key(text: str) -> tuple[int, Version | str]:
            try:
                return (1, Version(text))
            except InvalidVersion:
                return (0, text)

        return tuple(sorted(dict.fromkeys(a.version for a in self.files(project)), key=key))

    def artifacts(self, project: str, version: str) -> tuple[Artifact, ...]:
        found = tuple(a for a in self.files(project) if a.version == version)
        if not found:
            raise UsageError(f"{project} has no release {version} on the index", where=self.base)
        return found

    def metadata(self, artifact: Artifact) -> str:
        """The wheel's METADATA: the PEP 658 file when the index serves it, else read from the wheel."""
        path = self.cache / "metadata" / f"{artifact.sha256}.METADATA"
        if path.is_file():
            return path.read_text(encoding="utf-8")
        try:
            # PyPI serves the PEP 658 file next to every wheel uploaded since 2023 even where a mirror's
            # listing does not advertise it: ask first, download the wheel only when it is not there.
            text = self._get(artifact.url + ".metadata").decode("utf-8")
        except UsageError:
            text = _metadata_from_wheel(self.wheel(artifact))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return text

    def wheel(self, artifact: Artifact) -> Path:
        """The whole file, verified against the index's sha256, cached under it."""
        path = self.cache / "files" / artifact.sha256 / artifact.filename
        if path.is_file():
            return path
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        digest = hashlib.sha256()
        try:
            with (
                urllib.request.urlopen(artifact.url, timeout=self.timeout, context=self.context) as response,
                partial.open("wb") as out,
            ):
                while chunk := response.read(1 << 20):
                    digest.update(chunk)
                    out.write(chunk)
        except (urllib.error.URLError, OSError) as exc:
            raise EnvironmentProblem(
                f"cannot download: {getattr(exc, 'reason', exc)}", where=artifact.url
            ) from None
        if digest.hexdigest() != artifact.sha256:
            partial.unlink(missing_ok=True)
            raise EnvironmentProblem("the download does not match the index's sha256", where=artifact.url)
        partial.replace(path)
        return path


def _metadata_from_wheel(wheel: Path) -> str:
    import zipfile

    with zipfile.ZipFile(wheel) as archive:
        for name in archive.namelist():
            if name.endswith(".dist-info/METADATA") and name.count("/") == 1:
                return archive.read(name).decode("utf-8")
    raise EnvironmentProblem("the wheel has no .dist-info/METADATA", where=str(wheel))
