"""Facts read from artifacts, each with its provenance (the file name and its sha256). Pure."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from email.parser import Parser

from packaging.version import Version

from imagesmith.matrix.versions import Capability

# Requirement names whose exact pin states a CUDA-side fact of the framework build.
PINS = (
    (re.compile(r"^cuda-toolkit$"), "cuda"),
    (re.compile(r"^nvidia-cuda-runtime(-cu\d+)?$"), "cuda_runtime"),
    (re.compile(r"^nvidia-cudnn-cu\d+$"), "cudnn"),
    (re.compile(r"^nvidia-nccl-cu\d+$"), "nccl"),
    (re.compile(r"^nvidia-nvjitlink(-cu\d+)?$"), "nvjitlink"),
)
_REQ = re.compile(
    r"^\s*(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*(?P<spec>[^;]*?)\s*(;\s*(?P<marker>.*))?$"
)


@dataclass(frozen=True, kw_only=True)
class Provenance:
    artifact: str
    sha256: str

    def __str__(self) -> str:
        return f"{self.artifact} (sha256:{self.sha256[:12]})"


@dataclass(frozen=True, kw_only=True)
class Fact:
    """``subject`` is what the fact is about (``torch 2.13.0``, ``nvcc 13.0``); ``key`` one of cuda,
    cuda_runtime, cudnn, nccl, nvjitlink, python, extra (the extra the pin sits under), sass, ptx, targets."""

    subject: str
    key: str
    value: str
    provenance: Provenance


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def from_metadata(subject: str, metadata: str, provenance: Provenance) -> tuple[Fact, ...]:
    """Requires-Python, and every exact pin (``==``) of the CUDA-side packages, with the extra it needs
    (TensorFlow pins its CUDA wheels under ``[and-cuda]``; torch unconditionally on Linux)."""
    message = Parser().parsestr(metadata, headersonly=True)
    facts: list[Fact] = []
    python = message.get("Requires-Python")
    if python:
        facts.append(Fact(subject=subject, key="python", value=str(python).strip(), provenance=provenance))
    for raw in message.get_all("Requires-Dist") or ():
        match = _REQ.match(str(raw))
        if match is None:
            continue
        name = _normal(match["name"])
        spec = match["spec"].replace(" ", "")
        marker = match["marker"] or ""
        if "platform_system" in marker and "Linux" not in marker:
            continue  # a Windows- or macOS-only pin
        for pattern, key in PINS:
            if pattern.match(name):
                pinned = re.fullmatch(r"==([0-9][0-9A-Za-z.]*)", spec.split(",")[0]) if spec else None
                value = pinned.group(1) if pinned else (spec or "any")
                facts.append(Fact(subject=subject, key=key, value=value, provenance=provenance))
                extra = re.search(r"extra\s*==\s*['\"]([^'\"]+)['\"]", marker)
                if extra:
                    facts.append(
                        Fact(subject=subject, key=f"{key}.extra", value=extra.group(1), provenance=provenance)
                    )
    return tuple(facts)


def gpu_list(text: str) -> tuple[str, ...]:
    """``sm_75 sm_80 ...`` / ``compute_75 ...`` as nvcc's --list-gpu-code / --list-gpu-arch print them, or
    the ``Allowed values`` of ptxas's --gpu-name, in order and once each."""
    return tuple(dict.fromkeys(re.findall(r"\b(?:sm|compute)_\d+[a-z]?\b", text)))


def capabilities(names: tuple[str, ...]) -> tuple[str, ...]:
    """``sm_88`` -> ``8.8``: plain targets only (``sm_90a``/``sm_100f`` are suffixed variants)."""
    plain = {Capability.parse(name) for name in names if re.fullmatch(r"(?:sm|compute)_\d+", name)}
    return tuple(str(c) for c in sorted(plain))


def cpythons(python_tags: Iterable[str]) -> tuple[str, ...]:
    """``cp310``, ``cp39`` -> ``3.9 3.10`` (oldest first); other tags (``py3``, ``abi3``'s ``cp``-less) skipped."""
    out = {f"{tag[2]}.{tag[3:]}" for tag in python_tags if re.fullmatch(r"cp3\d+", tag)}
    return tuple(sorted(out, key=Version))
