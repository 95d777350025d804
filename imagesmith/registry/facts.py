"""Image facts without pulling: an image's labels and ENV from its registry, a digest-keyed cache, or the engine.

``image_facts(ref)`` asks the registry for the manifest ``ref`` names (one request; two for an index, which
is resolved to linux/amd64), then takes the config blob from the cache when it holds that digest, else from
the registry. A config blob is content-addressed: its bytes are checked against the sha256 digest before
they are trusted or cached, and a cache entry is checked again when read (a bad one is dropped). When the
registry cannot answer (unreachable, credentials refused, no such tag), the local Docker engine is asked;
when neither can answer, one ``imagesmith.errors`` exception names the ref and both reasons.

Cache: ``$XDG_CACHE_HOME/imagesmith/registry/<sha256 hex>.json`` (``~/.cache`` without XDG_CACHE_HOME),
the config blob's bytes as the registry served them.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from pathlib import Path

from imagesmith.contract.labels import ImageLabels, ours
from imagesmith.contract.record import record
from imagesmith.contract.tags import ImageRef
from imagesmith.errors import EnvironmentProblem, ImagesmithError, NegativeAnswer, UsageError

SOURCES = ("registry", "cache", "engine")
DEFAULT_TIMEOUT_S = 10.0
_SHA256 = re.compile(r"sha256:([0-9a-f]{64})")


@record
class ImageFacts:
    """What an image says about itself, and where it was read.

    ``source``: ``registry`` (config blob fetched now), ``cache`` (the tag resolved at the registry, the config
    served from the digest cache) or ``engine`` (the local Docker engine; ``registry_error`` says why the
    registry was not used). ``digest`` is the manifest digest the tag resolved to (None from the engine),
    ``config_digest`` the config blob's digest (the engine's image ID).
    """

    ref: str
    source: str
    labels: dict[str, str]
    env: dict[str, str]
    digest: str | None = None
    config_digest: str | None = None
    registry_error: str | None = None

    @property
    def promised(self) -> ImageLabels:
        """The ``io.imagesmith.*`` promises, read through the contract."""
        return ImageLabels.from_labels(self.labels)

    def to_json(self) -> dict[str, object]:
        return {
            "ref": self.ref,
            "source": self.source,
            "digest": self.digest,
            "config_digest": self.config_digest,
            "labels": ours(self.labels),
            "registry_error": self.registry_error,
        }


def cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "imagesmith" / "registry"


class ConfigCache:
    """Config blobs by sha256 digest; every read and write is checked against the digest."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root if root is not None else cache_dir()

    def _path(self, digest: str) -> Path | None:
        match = _SHA256.fullmatch(digest)
        return self.root / f"{match[1]}.json" if match else None

    def get(self, digest: str) -> bytes | None:
        path = self._path(digest)
        if path is None:
            return None
        try:
            body = path.read_bytes()
        except OSError:
            return None
        if f"sha256:{hashlib.sha256(body).hexdigest()}" != digest:
            path.unlink(missing_ok=True)  # corrupt or tampered: never served, refetched next time
            return None
        return body

    def put(self, digest: str, body: bytes) -> bool:
        """Store ``body`` under ``digest`` if it matches; False when it does not or the cache is unwritable
        (the cache only saves requests, so a read-only home never fails a lookup)."""
        path = self._path(digest)
        if path is None or f"sha256:{hashlib.sha256(body).hexdigest()}" != digest:
            return False
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".partial-", delete=False) as handle:
                handle.write(body)
            Path(handle.name).replace(path)
        except OSError:
            return False
        return True


def _config_facts(body: bytes, what: str) -> tuple[dict[str, str], dict[str, str]]:
    try:
        document = json.loads(body)
        config = document.get("config") or {}
        labels = {str(k): str(v) for k, v in (config.get("Labels") or {}).items()}
        env = dict(str(e).split("=", 1) for e in (config.get("Env") or []) if "=" in str(e))
    except (ValueError, AttributeError, TypeError) as exc:
        raise EnvironmentProblem(f"the image config of {what} is not an OCI image config: {exc}") from None
    return labels, env


def _from_registry(
    ref: ImageRef, text: str, *, cache: ConfigCache, timeout: float, platform: tuple[str, str]
) -> ImageFacts:
    from imagesmith.registry.client import Registry

    client = Registry.for_ref(ref, timeout=timeout)
    try:
        manifest = client.manifest(ref, platform=platform)
    except (KeyError, ValueError, TypeError, AttributeError) as exc:  # a manifest of the wrong shape
        raise EnvironmentProblem(
            f"registry {client.host} sent an unexpected manifest for {text}: {exc!r}"
        ) from None
    if manifest is None:
        raise NegativeAnswer(f"registry {client.host} has no {text} for {'/'.join(platform)}")
    digest = manifest.config_digest
    if not digest:
        raise EnvironmentProblem(f"registry {client.host}: the manifest of {text} names no config blob")
    body = cache.get(digest)
    source = "cache"
    if body is None:
        body = client.blob(ref, digest)
        cache.put(digest, body)
        source = "registry"
    labels, env = _config_facts(body, text)
    return ImageFacts(
        ref=text, source=source, labels=labels, env=env, digest=manifest.digest, config_digest=digest
    )


def _from_engine(text: str, registry_error: ImagesmithError | None) -> ImageFacts:
    from imagesmith.registry import engine

    labels, env, image_id = engine.inspect(text)
    return ImageFacts(
        ref=text,
        source="engine",
        labels=labels,
        env=env,
        config_digest=image_id,
        registry_error=_flat(registry_error.one_line()) if registry_error else None,
    )


def _flat(text: str) -> str:
    return " ".join(text.split())


def image_facts(
    ref: str,
    *,
    registry: bool = True,
    engine: bool = True,
    cache: ConfigCache | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
    platform: tuple[str, str] = ("linux", "amd64"),
) -> ImageFacts:
    """The labels and ENV of ``ref``: the registry first (config from the digest cache when it holds it),
    then the local engine. Raises ``UsageError`` for an empty reference, ``NegativeAnswer`` when neither
    knows the image, ``EnvironmentProblem`` when one of them could not be asked; each one line naming ``ref``.
    """
    text = ref.strip()
    if not text or any(c.isspace() for c in text) or not ImageRef.parse(text).repository:
        raise UsageError("not an image reference", where=repr(ref))
    registry_error: ImagesmithError | None = None
    if registry:
        try:
            return _from_registry(
                ImageRef.parse(text),
                text,
                cache=cache or ConfigCache(),
                timeout=timeout,
                platform=platform,
            )
        except ImagesmithError as exc:
            if not engine:
                kind = EnvironmentProblem if isinstance(exc, EnvironmentProblem) else NegativeAnswer
                raise kind(_flat(f"cannot read the labels of {text}: {exc.one_line()}")) from None
            registry_error = exc
    try:
        return _from_engine(text, registry_error)
    except ImagesmithError as exc:
        reasons = [f"local engine: {exc.one_line()}"]
        if registry_error is not None:
            reasons.insert(0, f"registry: {registry_error.one_line()}")
        # Nothing answered at all is an environment problem; both answering "no such image" is a no.
        broken = any(isinstance(e, EnvironmentProblem) for e in (exc, registry_error))
        final: type[ImagesmithError] = EnvironmentProblem if broken else NegativeAnswer
        raise final(_flat(f"cannot read the labels of {text}: {'; '.join(reasons)}")) from None
