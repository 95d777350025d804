"""Harvested facts against the transcribed data: confirmed, contradicted (both values), new. Pure."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from packaging.version import Version

from imagesmith.harvest.facts import Fact, Provenance
from imagesmith.matrix.knowledge import Knowledge
from imagesmith.matrix.versions import NvVersion

FRAMEWORK_PROJECTS = {"torch": "torch", "tensorflow": "tensorflow"}


@dataclass(frozen=True, kw_only=True)
class Finding:
    status: str  # confirmed | contradicted | new | info
    subject: str
    key: str
    data: str | None  # the data's value (None when the data has no row)
    artifact: str
    where: str | None  # the data row, file:line
    provenance: Provenance


def _caps(text: str) -> list[NvVersion]:
    return sorted(NvVersion.capability(c) for c in text.split())


def _show(caps: Iterable[NvVersion]) -> str:
    return " ".join(str(c) for c in sorted(caps))


def _nvcc(kb: Knowledge, fact: Fact) -> Finding | None:
    release = fact.subject.split()[1]
    if fact.key != "targets":
        return Finding(status="info", subject=fact.subject, key=fact.key, data=None, artifact=fact.value, where=None, provenance=fact.provenance)  # fmt: skip
    row = kb.nvcc_capabilities(NvVersion.parse(release))
    artifact = set(_caps(fact.value))
    shown = _show(artifact)
    if row is None:
        return Finding(status="new", subject=fact.subject, key="targets", data=None, artifact=shown, where=None, provenance=fact.provenance)  # fmt: skip
    data = set(row.capabilities)
    if data == artifact:
        return Finding(status="confirmed", subject=fact.subject, key="targets", data=_show(data), artifact=shown, where=row.provenance.where, provenance=fact.provenance)  # fmt: skip
    missing, extra = artifact - data, data - artifact
    data_text = _show(data) + "".join(
        [
            f"; lacks {_show(missing)}" if missing else "",
            f"; has {_show(extra)} the artifact does not" if extra else "",
        ]
    )
    # The row in effect was written for an older release: what is missing is a row of its own.
    status = "contradicted" if row.since.truncate(2) == NvVersion.parse(release).truncate(2) else "new"
    return Finding(status=status, subject=fact.subject, key="targets", data=data_text, artifact=shown, where=row.provenance.where, provenance=fact.provenance)  # fmt: skip


def _same_cuda_line(a: str, b: str) -> bool:
    """The same CUDA major.minor (a runtime wheel 12.8.90 belongs to the 12.8 build)."""
    x, y = NvVersion.leading(a), NvVersion.leading(b)
    return x is not None and y is not None and x.truncate(2) == y.truncate(2)


def _admits_exactly_from_the_lowest(spec: str, shipped: list[str]) -> bool:
    """The data's Python specifier admits every CPython with a wheel, and none older than the oldest."""
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    try:
        admitted = SpecifierSet(spec)
    except InvalidSpecifier:
        return False
    if not shipped or not all(admitted.contains(v) for v in shipped):
        return False
    oldest = min(Version(v) for v in shipped)
    return not any(admitted.contains(f"3.{minor}") for minor in range(oldest.minor))


def _lower_bound(spec: str) -> str | None:
    match = re.search(r">=\s*([0-9.]+)", spec)
    return match.group(1) if match else None


def _framework(kb: Knowledge, facts: list[Fact]) -> list[Finding]:
    first = facts[0]
    framework, version = first.subject.split()
    # A framework release is a PEP 440 version; its release line is major.minor (2.14.1 -> 2.14).
    parsed = Version(version)
    line = f"{parsed.major}.{parsed.minor}"
    release = next((r for r in kb.releases(framework) if r.version == line), None)
    prov = first.provenance
    if release is None:
        # What the artifact says about the release the data lacks, for the person who adds its rows.
        known = [Finding(status="info", subject=f.subject, key=f.key, data=None, artifact=f.value, where=None, provenance=f.provenance) for f in facts]  # fmt: skip
        return [Finding(status="new", subject=first.subject, key="release", data=None, artifact=line, where=None, provenance=prov), *known]  # fmt: skip
    out: list[Finding] = []
    if version not in release.patches:
        out.append(Finding(status="new", subject=first.subject, key="patch", data=", ".join(release.patches), artifact=version, where=release.provenance.where, provenance=prov))  # fmt: skip
    default = release.pypi_default or ("cuda" if framework == "tensorflow" else None)
    build = next((b for b in kb.builds(framework) if b.release == line and b.variant == default), None)
    by_key = {f.key: f for f in facts}
    cuda = by_key.get("cuda") or by_key.get("cuda_runtime")
    if build is not None and cuda is not None and re.fullmatch(r"[0-9.]+", cuda.value):
        ok = _same_cuda_line(cuda.value, str(build.cuda))
        out.append(Finding(status="confirmed" if ok else "contradicted", subject=first.subject, key="cuda", data=str(build.cuda), artifact=cuda.value, where=build.provenance.where, provenance=prov))  # fmt: skip
    cudnn = by_key.get("cudnn")
    if build is not None and cudnn is not None and re.fullmatch(r"[0-9.]+", cudnn.value):
        data = str(build.cudnn) if build.cudnn else None
        ok = data is not None and cudnn.value.startswith(data)
        out.append(Finding(status="confirmed" if ok else ("new" if data is None else "contradicted"), subject=first.subject, key="cudnn", data=data, artifact=cudnn.value, where=build.provenance.where, provenance=prov))  # fmt: skip
    for key, attribute in (("sass", "sass"), ("ptx", "ptx")):
        fact = by_key.get(key)
        if build is not None and fact is not None:
            data = " ".join(str(c) for c in getattr(build, attribute))
            ok = set(data.split()) == set(fact.value.split())
            out.append(Finding(status="confirmed" if ok else "contradicted", subject=first.subject, key=key, data=data, artifact=fact.value, where=build.provenance.where, provenance=prov))  # fmt: skip
    for key, fact in by_key.items():
        if key.startswith("fatbin "):
            out.append(Finding(status="info", subject=first.subject, key=key, data=None, artifact=fact.value, where=None, provenance=prov))  # fmt: skip
    shipped = by_key.get("pythons")
    if shipped is not None:
        experimental = set(release.python_experimental)
        supported = [v for v in shipped.value.split() if v not in experimental]
        ok = experimental <= set(shipped.value.split()) and _admits_exactly_from_the_lowest(
            release.python, supported
        )
        out.append(Finding(status="confirmed" if ok else "contradicted", subject=first.subject, key="python (wheels)", data=release.python + "".join(f" + {v} (experimental)" for v in release.python_experimental), artifact=shipped.value, where=release.provenance.where, provenance=prov))  # fmt: skip
    python = by_key.get("python")
    if python is not None:
        ours, theirs = _lower_bound(release.python), _lower_bound(python.value)
        ok = ours is not None and theirs is not None and Version(ours) == Version(theirs)
        # With the wheels' own Pythons judged above, a looser Requires-Python is worth saying, not a conflict.
        status = "confirmed" if ok else ("info" if shipped is not None else "contradicted")
        out.append(Finding(status=status, subject=first.subject, key="python (lowest)", data=release.python, artifact=python.value, where=release.provenance.where, provenance=prov))  # fmt: skip
    for key in ("cuda_runtime", "cudnn", "nccl", "nvjitlink", "platforms"):
        if (key in by_key and not re.fullmatch(r"[0-9.]+", by_key[key].value)) or (
            key in ("nccl", "nvjitlink", "platforms") and key in by_key
        ):
            out.append(Finding(status="info", subject=first.subject, key=key, data=None, artifact=by_key[key].value, where=None, provenance=prov))  # fmt: skip
    return out


def compare(kb: Knowledge, facts: Iterable[Fact]) -> tuple[Finding, ...]:
    by_subject: dict[str, list[Fact]] = {}
    for fact in facts:
        by_subject.setdefault(fact.subject, []).append(fact)
    out: list[Finding] = []
    for subject, group in by_subject.items():
        kind = subject.split()[0]
        if kind == "nvcc":
            out += [f for f in (_nvcc(kb, fact) for fact in group) if f is not None]
        elif kind in FRAMEWORK_PROJECTS:
            out += _framework(kb, group)
        else:
            out += [Finding(status="info", subject=subject, key=f.key, data=None, artifact=f.value, where=None, provenance=f.provenance) for f in group]  # fmt: skip
    return tuple(out)
