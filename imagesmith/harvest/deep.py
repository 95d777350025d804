"""``--deep``: the SASS and PTX architectures a framework wheel's CUDA libraries carry, read from their
fatbins (the doctor's header walk), cached by the wheel's sha256."""

from __future__ import annotations

import json
import tempfile
import zipfile
from pathlib import Path

from imagesmith.harvest import facts
from imagesmith.harvest.pypi import Artifact, Index

# An architecture counts as built when it has at least half the entries of the library's most-built one
# entries: libtorch_cuda.so (2.13, cu130) has 449 kernels for each of sm_75..sm_120 and 1 to 59 for the
# arch-specific extras (sm_89, sm_100a, sm_103, sm_121a), as cuobjdump --list-elf also shows; sm_100a
# counts as sm_100 in the fatbin header, so sm_100 has 508 and the others 449.
FULL = 0.5


def covered(counts: dict[int, int]) -> tuple[int, ...]:
    top = max(counts.values(), default=0)
    return tuple(sorted(arch for arch, n in counts.items() if n >= FULL * top))


Library = tuple[tuple[int, ...], tuple[int, ...], int]  # (sass, ptx, fatbin entries)


def scan_wheel(wheel: Path) -> dict[str, Library]:
    """Each shared library of the wheel that has a fatbin: the (sass, ptx) architectures it is built for
    (every kernel, not an architecture-specific extra; see ``covered``)."""
    from imagesmith.doctor import fatbin

    found: dict[str, Library] = {}
    with zipfile.ZipFile(wheel) as archive, tempfile.TemporaryDirectory(prefix="imagesmith-deep-") as tmp:
        for info in archive.infolist():
            name = info.filename.rsplit("/", 1)[-1]
            if ".so" not in name or info.file_size < 4096:
                continue
            target = Path(tmp) / "lib.so"
            with archive.open(info) as source, target.open("wb") as out:
                while chunk := source.read(1 << 22):
                    out.write(chunk)
            sass, ptx = fatbin.census(str(target))
            if sass or ptx:
                found[name] = (covered(sass), covered(ptx), sum(sass.values()) + sum(ptx.values()))
    return found


def primary(libraries: dict[str, Library]) -> str | None:
    """The library that decides where the build runs: the one with the most kernels is the framework's
    main CUDA library (libtorch_cuda.so); helpers (NVSHMEM, linear algebra) are built for their own lists,
    which the union would misread as the framework's."""
    if not libraries:
        return None
    return max(libraries, key=lambda name: (libraries[name][2], name))


def harvest(index: Index, artifact: Artifact, subject: str) -> tuple[facts.Fact, ...]:
    cache = index.cache / "deep" / f"{artifact.sha256}.v5.json"
    if cache.is_file():
        raw = json.loads(cache.read_text())
        libraries = {k: (tuple(v[0]), tuple(v[1]), int(v[2])) for k, v in raw.items()}
    else:
        libraries = scan_wheel(index.wheel(artifact))
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps({k: [list(v[0]), list(v[1]), v[2]] for k, v in libraries.items()}))
    provenance = facts.Provenance(artifact=artifact.filename, sha256=artifact.sha256)

    def caps(values: tuple[int, ...]) -> str:
        return " ".join(f"{v // 10}.{v % 10}" for v in values)

    main = primary(libraries)
    if main is None:
        return (facts.Fact(subject=subject, key="fatbins", value="none", provenance=provenance),)
    out = [
        facts.Fact(subject=subject, key="sass", value=caps(libraries[main][0]), provenance=provenance),
        facts.Fact(subject=subject, key="ptx", value=caps(libraries[main][1]), provenance=provenance),
    ]
    for name, (sass, ptx, entries) in sorted(libraries.items()):
        value = f"sass {caps(sass) or '-'}; ptx {caps(ptx) or '-'}; {entries} entries"
        value += " (decides)" if name == main else ""
        out.append(facts.Fact(subject=subject, key=f"fatbin {name}", value=value, provenance=provenance))
    return tuple(out)
