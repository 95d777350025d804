"""The tag format of curated images, and the one parser of image references.

Immutable tags name everything that changes an image's content (framework release, Python, CUDA,
variant, OS); rolling aliases (``torch:2.13-cu13.0-runtime``, ``torch:2.13-runtime``, ``base:py3.11``)
move with the plan.
"""

from __future__ import annotations

from imagesmith.contract.record import record


@record
class ImageRef:
    """``[registry/]path[:tag][@digest]``; ``repository`` is everything before the tag."""

    repository: str
    tag: str | None
    digest: str | None

    @classmethod
    def parse(cls, text: str) -> ImageRef:
        name, _, digest = text.strip().partition("@")
        slash = name.rfind("/")
        colon = name.rfind(":")
        if colon > slash:  # a colon after the last slash is a tag; before it, a registry port
            repository, tag = name[:colon], name[colon + 1 :]
        else:
            repository, tag = name, None
        return cls(repository=repository, tag=tag or None, digest=digest or None)

    @property
    def registry(self) -> str | None:
        """The host part, when the first path component looks like one (has '.' or ':' or is localhost)."""
        first, sep, _rest = self.repository.partition("/")
        if sep and ("." in first or ":" in first or first == "localhost"):
            return first
        return None

    @property
    def path(self) -> str:
        """The repository without its registry host."""
        host = self.registry
        return self.repository[len(host) + 1 :] if host else self.repository

    def with_digest(self, digest: str) -> ImageRef:
        return ImageRef(repository=self.repository, tag=self.tag, digest=digest)

    def __str__(self) -> str:
        text = self.repository
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text

    @property
    def tag_or_latest(self) -> str:
        return self.tag or "latest"


def repository_of(ref: str) -> str:
    return ImageRef.parse(ref).repository


def release_suffix(release: int) -> str:
    """The immutable tags' moving part: the policy's ``release`` N as ``-rN`` (nothing for 0, the old tags)."""
    return f"-r{release}" if release > 0 else ""


def base_tag(registry: str, *, python: str, os: str, release: int = 0) -> str:
    return f"{registry}/base:py{python}-{os}{release_suffix(release)}"


def base_alias(registry: str, *, python: str) -> str:
    return f"{registry}/base:py{python}"


def framework_tag(
    registry: str,
    *,
    framework: str,
    version: str,
    python: str,
    cuda: str,
    variant: str,
    os: str,
    release: int = 0,
) -> str:
    """``cuda`` is ``major.minor``; CUDA-only lines (framework ``cuda``) carry it as their version."""
    suffix = release_suffix(release)
    if framework == "cuda":
        return f"{registry}/cuda:{version}-py{python}-{variant}-{os}{suffix}"
    return f"{registry}/{framework}:{version}-py{python}-cu{cuda}-{variant}-{os}{suffix}"


def rolling_aliases(
    registry: str, *, framework: str, release_line: str, cuda: str, variant: str, newest: bool
) -> tuple[str, ...]:
    """``fw:2.13-cu13.0-variant`` always; ``fw:2.13-variant`` only for the newest CUDA of the line."""
    aliases = [f"{registry}/{framework}:{release_line}-cu{cuda}-{variant}"]
    if newest:
        aliases.append(f"{registry}/{framework}:{release_line}-{variant}")
    return tuple(aliases)


@record
class CuratedTag:
    """The parts of an immutable framework tag written by ``framework_tag``."""

    repository: str
    framework: str
    version: str
    python: str
    cuda: str
    variant: str
    os: str
    release: int = 0


def parse_framework_tag(text: str) -> CuratedTag | None:
    """``<repo>/<framework>:<version>-py<py>-cu<cuda>-<variant>-<os>``, or None for any other reference."""
    import re  # only the picker and the templates parse tags; the doctor's fast path never does

    ref = ImageRef.parse(text)
    if ref.tag is None:
        return None
    match = re.fullmatch(
        r"(?P<version>[0-9][0-9A-Za-z.]*)-py(?P<py>\d+\.\d+)-cu(?P<cuda>\d+(?:\.\d+)*)"
        r"-(?P<variant>[a-z0-9]+)-(?P<os>[a-z0-9.]+)(?:-r(?P<release>[0-9]+))?",
        ref.tag,
    )
    if match is None:
        return None
    return CuratedTag(
        repository=ref.repository,
        framework=ref.repository.rsplit("/", 1)[-1],
        version=match["version"],
        python=match["py"],
        cuda=match["cuda"],
        variant=match["variant"],
        os=match["os"],
        release=int(match["release"] or 0),
    )
