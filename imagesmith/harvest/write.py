"""``harvest --write``: new rows from artifacts, appended to the data files with ``confidence =
"artifact"`` and a source citing the artifact's file name and sha256. Only rows that add knowledge are
written (an nvcc target list for a release the data has no row for); a contradiction of an existing row is
for a person to resolve, and framework releases need their build rows (variants, SASS) first."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from imagesmith.harvest.compare import Finding
from imagesmith.matrix.versions import NvVersion


@dataclass(frozen=True, kw_only=True)
class Write:
    file: str
    source_text: str
    row: str  # the TOML text of the row, with {source} for its id
    what: str


def writes(findings: tuple[Finding, ...]) -> tuple[list[Write], list[str]]:
    """The rows to add, and one line per new finding that is not written (with why)."""
    out: list[Write] = []
    skipped: list[str] = []
    previous: str | None = None  # a later release with the same list needs no row of its own
    # Subjects read "nvcc 12.9": oldest release first.
    ordered = sorted(findings, key=lambda f: NvVersion.leading(f.subject.split()[-1]) or NvVersion((0,)))
    for f in ordered:
        if f.status != "new":
            continue
        if f.subject.startswith("nvcc ") and f.key == "targets":
            release = f.subject.split()[1]
            if f.artifact == previous:
                skipped.append(f"not written: nvcc {release} targets (the same as the row just written)")
                continue
            previous = f.artifact
            caps = ", ".join(f'"{c}"' for c in f.artifact.split())
            out.append(
                Write(
                    file="cuda.toml",
                    source_text=f"nvcc --list-gpu-code of {f.provenance.artifact} (sha256:{f.provenance.sha256}), "
                    "harvested by `imagesmith matrix harvest`.",
                    row=(
                        f'\n[[nvcc_targets]]\nsince        = "{release}"\ncapabilities = [{caps}]\n'
                        'source       = ["{source}"]\nconfidence   = "artifact"\n'
                        f'note         = "Harvested from the nvidia-cuda-nvcc wheel: {f.provenance.artifact}."\n'
                    ),
                    what=f"nvcc {release} targets",
                )
            )
        else:
            skipped.append(
                f"not written: {f.subject} {f.key} = {f.artifact} (add its release and build rows by hand)"
            )
    return out, skipped


def apply(data_dir: Path, todo: list[Write]) -> list[str]:
    """Append each row and its source id (the next free ``H<n>`` of the file's [sources])."""
    done = []
    for write in todo:
        path = data_dir / write.file
        text = path.read_text(encoding="utf-8")
        taken = {int(n) for n in re.findall(r"^H(\d+) = ", text, flags=re.MULTILINE)}
        source = f"H{max(taken, default=0) + 1}"
        lines = text.splitlines(keepends=True)
        start = next(i for i, line in enumerate(lines) if line.strip() == "[sources]")
        end = next((i for i in range(start + 1, len(lines)) if not lines[i].strip()), len(lines))
        escaped = write.source_text.replace("\\", "\\\\").replace('"', '\\"')
        lines.insert(end, f'{source} = "{escaped}"\n')
        path.write_text(
            "".join(lines).rstrip("\n") + "\n" + write.row.replace("{source}", source), encoding="utf-8"
        )
        done.append(f"wrote {write.what} to {write.file} (source {source})")
    return done
