"""nvcc's own word on its targets: the ``nvidia-cuda-nvcc*`` wheel of a CUDA release, unpacked, asked
``--list-gpu-code`` (and ``--list-gpu-arch``). PyPI's CUDA 12 compiler wheel carries ptxas but no nvcc
driver; there ptxas's ``--help`` lists the targets it assembles for."""

from __future__ import annotations

import os
import subprocess
import zipfile
from pathlib import Path

from imagesmith.errors import UsageError
from imagesmith.harvest import facts
from imagesmith.harvest.pypi import Artifact, Index
from imagesmith.matrix.versions import NvVersion


def project_for(release: str) -> str:
    major = NvVersion.parse(release).major
    return "nvidia-cuda-nvcc" if major >= 13 else f"nvidia-cuda-nvcc-cu{major}"


def newest_artifact(index: Index, release: str) -> Artifact:
    """The newest final ``<release>.*`` compiler wheel for Linux x86_64."""
    from packaging.version import Version

    project = project_for(release)
    candidates = [
        v for v in index.versions(project) if v.startswith(f"{release}.") and not Version(v).is_prerelease
    ]
    if not candidates:
        raise UsageError(f"no {project} {release}.* on the index", where=index.base)
    for version in reversed(candidates):
        wheels = [
            a
            for a in index.artifacts(project, version)
            if a.is_wheel and any("x86_64" in t for t in a.platform_tags)
        ]
        if wheels:
            return wheels[0]
    raise UsageError(f"no Linux x86_64 wheel of {project} {release}.*", where=index.base)


def unpack_tools(wheel: Path, into: Path) -> dict[str, Path]:
    """``bin/nvcc`` and ``bin/ptxas`` (and what they need next to them) from the wheel, executable."""
    found: dict[str, Path] = {}
    with zipfile.ZipFile(wheel) as archive:
        for name in archive.namelist():
            parts = name.split("/")
            if "bin" in parts[:-1] and parts[-1]:
                target = into / name
                if not target.exists():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(archive.read(name))
                    target.chmod(0o755)
                if parts[-1] in ("nvcc", "ptxas"):
                    found[parts[-1]] = target
    return found


def harvest(index: Index, release: str) -> tuple[facts.Fact, ...]:
    artifact = newest_artifact(index, release)
    wheel = index.wheel(artifact)
    tools = unpack_tools(wheel, index.cache / "unpacked" / artifact.sha256)
    provenance = facts.Provenance(artifact=artifact.filename, sha256=artifact.sha256)
    subject = f"nvcc {release}"
    env = {**os.environ, "LC_ALL": "C"}
    if "nvcc" in tools:
        code = subprocess.run(
            [str(tools["nvcc"]), "--list-gpu-code"], capture_output=True, text=True, env=env
        )
        arch = subprocess.run(
            [str(tools["nvcc"]), "--list-gpu-arch"], capture_output=True, text=True, env=env
        )
        sass, ptx = facts.gpu_list(code.stdout), facts.gpu_list(arch.stdout)
        how = "nvcc --list-gpu-code/--list-gpu-arch"
    elif "ptxas" in tools:
        help_text = subprocess.run(
            [str(tools["ptxas"]), "--help"], capture_output=True, text=True, env=env
        ).stdout
        sass, ptx = facts.gpu_list(help_text.split("--gpu-name", 1)[-1].split("\n\n", 1)[0]), ()
        how = "ptxas --help (--gpu-name)"
    else:
        raise UsageError(f"{artifact.filename} has neither nvcc nor ptxas", where=str(wheel))
    out = [
        facts.Fact(subject=subject, key="toolkit", value=artifact.version, provenance=provenance),
        facts.Fact(
            subject=subject, key="targets", value=" ".join(facts.capabilities(sass)), provenance=provenance
        ),
        facts.Fact(subject=subject, key="how", value=how, provenance=provenance),
    ]
    if ptx:
        out.append(
            facts.Fact(
                subject=subject, key="ptx", value=" ".join(facts.capabilities(ptx)), provenance=provenance
            )
        )
    return tuple(out)
