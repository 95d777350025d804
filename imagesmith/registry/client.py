"""A small OCI distribution API client: resolve a tag to its manifest digest, read the config's labels.

Anonymous access, HTTP basic and bearer-token challenges (credentials from the Docker ``config.json``
``auths`` entry of the host). Loopback registries (``localhost``, ``127.0.0.0/8``, ``[::1]``) speak plain
HTTP, as the Docker engine assumes for them; every other host HTTPS.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imagesmith.contract.tags import ImageRef
from imagesmith.errors import EnvironmentProblem

MANIFEST_TYPES = (
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
INDEX_TYPES = MANIFEST_TYPES[2:]
DOCKER_HUB = "registry-1.docker.io"
# What users and ``docker login`` call Docker Hub: the keys its credentials are stored under.
HUB_NAMES = ("docker.io", "index.docker.io", DOCKER_HUB)


@dataclass(frozen=True, kw_only=True)
class Manifest:
    """One platform's image manifest: its digest, the config digest (= the engine's image ID) and layers."""

    digest: str
    media_type: str
    config_digest: str
    layers: tuple[tuple[str, int], ...]  # (digest, compressed size)

    @property
    def compressed_size(self) -> int:
        return sum(size for _digest, size in self.layers)


def repository_path(ref: ImageRef) -> str:
    """The repository's name on its registry: Docker Hub's official images live under ``library/``."""
    if ref.registry and ref.registry not in HUB_NAMES:
        return ref.path
    return ref.path if "/" in ref.path else f"library/{ref.path}"


def _loopback(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if not host.startswith("[") else host.split("]")[0] + "]"
    return name in ("localhost", "[::1]") or name.startswith("127.")


def _docker_auth(host: str) -> str | None:
    """The base64 ``user:password`` Docker stored for ``host``, if any (no credential helpers)."""
    config_dir = os.environ.get("DOCKER_CONFIG") or str(Path.home() / ".docker")
    try:
        data = json.loads((Path(config_dir) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    auths = data.get("auths") if isinstance(data, dict) else None
    if not isinstance(auths, dict):
        return None
    names = HUB_NAMES if host in HUB_NAMES else (host,)
    for key, entry in auths.items():
        if isinstance(entry, dict) and re.sub(r"^https?://", "", str(key)).split("/")[0] in names:
            auth = entry.get("auth")
            return str(auth) if auth else None
    return None


class Registry:
    """One registry host; ``timeout`` bounds every request."""

    def __init__(self, host: str, *, timeout: float = 30) -> None:
        self.host = host
        self.scheme = "http" if _loopback(host) else "https"
        self.timeout = timeout
        self._token: dict[str, str] = {}
        self._opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}) if _loopback(host) else urllib.request.ProxyHandler()
        )

    @classmethod
    def for_ref(cls, ref: ImageRef, *, timeout: float = 30) -> Registry:
        host = ref.registry or DOCKER_HUB
        return cls(DOCKER_HUB if host in HUB_NAMES else host, timeout=timeout)

    # -- HTTP -----------------------------------------------------------------------------------------
    def _request(self, path: str, accept: tuple[str, ...], scope: str) -> tuple[bytes, dict[str, str]] | None:
        url = f"{self.scheme}://{self.host}{path}"
        headers = {"Accept": ", ".join(accept)} if accept else {}
        for attempt in range(2):
            auth = self._token.get(scope)
            request = urllib.request.Request(
                url, headers={**headers, **({"Authorization": auth} if auth else {})}
            )
            try:
                with self._opener.open(request, timeout=self.timeout) as response:
                    return response.read(), {k.lower(): v for k, v in response.headers.items()}
            except urllib.error.HTTPError as exc:
                if exc.code == 404:
                    return None
                if exc.code == 401 and attempt == 0:
                    self._authenticate(exc.headers.get("WWW-Authenticate") or "", scope)
                    continue
                raise EnvironmentProblem(
                    f"registry {self.host} answered {exc.code} {exc.reason} for {path}",
                    hint="check the credentials in ~/.docker/config.json (docker login)"
                    if exc.code in (401, 403)
                    else None,
                ) from None
            except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
                # ValueError: a reference that makes no URL (urllib.request's InvalidURL)
                reason = getattr(exc, "reason", None) or f"{type(exc).__name__}: {exc}"
                raise EnvironmentProblem(f"registry {self.host} cannot be reached: {reason}") from None
        raise EnvironmentProblem(f"registry {self.host} refused the credentials for {path}")

    def _authenticate(self, challenge: str, scope: str) -> None:
        stored = _docker_auth(self.host)
        kind, _, params_text = challenge.partition(" ")
        if kind.lower() == "basic":
            if stored is None:
                raise EnvironmentProblem(
                    f"registry {self.host} wants credentials", hint=f"run `docker login {self.host}`"
                )
            self._token[scope] = f"Basic {stored}"
            return
        params = dict(re.findall(r'(\w+)="([^"]*)"', params_text))
        realm = params.get("realm")
        if kind.lower() != "bearer" or not realm:
            raise EnvironmentProblem(
                f"registry {self.host} sent an authentication challenge imagesmith cannot answer: {challenge!r}"
            )
        query = {"service": params.get("service", "")}
        query["scope"] = scope
        url = f"{realm}?{urllib.parse.urlencode({k: v for k, v in query.items() if v})}"
        request = urllib.request.Request(url, headers={"Authorization": f"Basic {stored}"} if stored else {})
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                data = json.loads(response.read())
        except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
            raise EnvironmentProblem(f"token service {realm} of {self.host} failed: {exc}") from None
        if not isinstance(data, dict):
            raise EnvironmentProblem(f"token service {realm} of {self.host} returned no token")
        token = data.get("token") or data.get("access_token")
        if not token:
            raise EnvironmentProblem(f"token service {realm} of {self.host} returned no token")
        self._token[scope] = f"Bearer {token}"

    # -- the API ----------------------------------------------------------------------------------------
    def digest(self, ref: ImageRef) -> str | None:
        """The digest ``ref``'s tag points at now (an index's own digest for a multi-platform image), or
        None when the registry has no such tag: what ``FROM tag@digest`` pins."""
        path = repository_path(ref)
        answer = self._request(
            f"/v2/{path}/manifests/{ref.tag_or_latest}", MANIFEST_TYPES, f"repository:{path}:pull"
        )
        if answer is None:
            return None
        body, headers = answer
        return headers.get("docker-content-digest") or f"sha256:{hashlib.sha256(body).hexdigest()}"

    def manifest(self, ref: ImageRef, *, platform: tuple[str, str] = ("linux", "amd64")) -> Manifest | None:
        """The image manifest ``ref`` names (an index is resolved to ``platform``), or None when absent."""
        path = repository_path(ref)
        reference = ref.digest or ref.tag_or_latest
        scope = f"repository:{path}:pull"
        answer = self._request(f"/v2/{path}/manifests/{reference}", MANIFEST_TYPES, scope)
        if answer is None:
            return None
        body, headers = answer
        try:
            document: dict[str, Any] = json.loads(body)
            if not isinstance(document, dict):
                raise ValueError("not a JSON object")
        except ValueError as exc:
            raise EnvironmentProblem(
                f"registry {self.host} sent a manifest for {ref} that is not JSON: {exc}"
            ) from None
        media_type = str(document.get("mediaType") or headers.get("content-type", "")).split(";")[0]
        digest = headers.get("docker-content-digest") or f"sha256:{hashlib.sha256(body).hexdigest()}"
        if media_type in INDEX_TYPES or "manifests" in document:
            for entry in document.get("manifests") or []:
                plat = entry.get("platform") or {}
                if (plat.get("os"), plat.get("architecture")) == platform:
                    return self.manifest(
                        ImageRef(repository=ref.repository, tag=None, digest=str(entry["digest"]))
                    )
            return None
        config = document.get("config") or {}
        return Manifest(
            digest=digest,
            media_type=media_type,
            config_digest=str(config.get("digest", "")),
            layers=tuple(
                (str(layer.get("digest")), int(layer.get("size") or 0))
                for layer in document.get("layers") or ()
            ),
        )

    def blob(self, ref: ImageRef, digest: str) -> bytes:
        """A blob's bytes, checked against ``digest`` (sha256) before anyone trusts them."""
        path = repository_path(ref)
        answer = self._request(f"/v2/{path}/blobs/{digest}", (), f"repository:{path}:pull")
        if answer is None:
            raise EnvironmentProblem(f"registry {self.host} lists {ref} but has no blob {digest}")
        body = answer[0]
        algorithm, _, expected = digest.partition(":")
        if algorithm == "sha256" and hashlib.sha256(body).hexdigest() != expected:
            raise EnvironmentProblem(
                f"registry {self.host} sent a blob for {ref} that does not match {digest}"
            )
        return body

    def config(self, ref: ImageRef, manifest: Manifest) -> dict[str, Any]:
        """The image configuration blob (labels under ``config.Labels``)."""
        try:
            data = json.loads(self.blob(ref, manifest.config_digest))
        except ValueError:
            raise EnvironmentProblem(f"registry {self.host}: the config blob of {ref} is not JSON") from None
        return data if isinstance(data, dict) else {}

    def labels(self, ref: ImageRef, manifest: Manifest) -> dict[str, str]:
        config = self.config(ref, manifest).get("config") or {}
        labels = config.get("Labels") or {}
        return {str(k): str(v) for k, v in labels.items()}
