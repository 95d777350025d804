"""The hand-kept overlay tables: facts no provider price or spec file states in a structured form."""

from __future__ import annotations

import csv
import fnmatch
import io
from dataclasses import dataclass
from pathlib import Path

from imagesmith.errors import DataError

OVERLAY_DIR = Path(__file__).parent / "overlays"


@dataclass(frozen=True, kw_only=True)
class GpuModel:
    model: str
    vendor: str
    api_names: tuple[str, ...]
    matrix_names: tuple[str, ...]
    nominal_memory_gb: float
    cc_fallback: str


@dataclass(frozen=True, kw_only=True)
class InstanceGpu:
    cloud: str
    pattern: str
    gpu_model: str
    gpu_count: float | None
    fractional: bool
    why: str


@dataclass(frozen=True, kw_only=True)
class Family:
    cloud: str
    pattern: str
    burstable: bool


@dataclass(frozen=True, kw_only=True)
class Arch:
    cloud: str
    pattern: str
    arch: str


@dataclass(frozen=True, kw_only=True)
class GcpSkuName:
    kind: str
    key: str
    sku_stem: str
    gpu_model: str


@dataclass(frozen=True, kw_only=True)
class GcpAttach:
    host: str
    accelerator: str
    count: int


@dataclass(frozen=True, kw_only=True)
class Overlays:
    gpus: tuple[GpuModel, ...]
    instance_gpus: tuple[InstanceGpu, ...]
    families: tuple[Family, ...]
    gcp_skus: tuple[GcpSkuName, ...]
    gcp_attachable: tuple[GcpAttach, ...]
    archs: tuple[Arch, ...] = ()

    def gpu(self, model: str) -> GpuModel | None:
        return next((g for g in self.gpus if g.model == model), None)

    def gpu_by_api_name(self, name: str) -> GpuModel | None:
        low = name.lower()
        return next((g for g in self.gpus if low in (a.lower() for a in g.api_names)), None)

    def instance_gpu(self, cloud: str, instance_type: str) -> InstanceGpu | None:
        return next(
            (
                o
                for o in self.instance_gpus
                if o.cloud == cloud and fnmatch.fnmatchcase(instance_type, o.pattern)
            ),
            None,
        )

    def burstable(self, cloud: str, instance_type: str) -> bool:
        return any(
            f.burstable and f.cloud == cloud and fnmatch.fnmatchcase(instance_type, f.pattern)
            for f in self.families
        )

    def arch(self, cloud: str, instance_type: str) -> str | None:
        return next(
            (
                a.arch
                for a in self.archs
                if a.cloud == cloud and fnmatch.fnmatchcase(instance_type, a.pattern)
            ),
            None,
        )

    def gcp_family_stem(self, family: str) -> str | None:
        return next((s.sku_stem for s in self.gcp_skus if s.kind == "family" and s.key == family), None)

    def gcp_accelerator(self, accel: str) -> GcpSkuName | None:
        return next((s for s in self.gcp_skus if s.kind == "accelerator" and s.key == accel), None)


def read_table(path: Path) -> list[tuple[int, dict[str, str]]]:
    """Rows of a CSV whose leading '#' lines are comments, each with its 1-based line number."""
    lines = path.read_text().splitlines(keepends=True)
    skip = 0
    while skip < len(lines) and lines[skip].startswith("#"):
        skip += 1
    reader = csv.DictReader(io.StringIO("".join(lines[skip:])))
    return [(skip + 1 + reader.line_num, row) for row in reader]


def _num(text: str, where: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise DataError(f"not a number: {text!r}", where=where) from None


def load(directory: Path = OVERLAY_DIR) -> Overlays:
    def where(name: str, line: int) -> str:
        return f"{directory / name}:{line}"

    gpus = tuple(
        GpuModel(
            model=r["model"],
            vendor=r["vendor"],
            api_names=tuple(a for a in r["api_names"].split(";") if a),
            matrix_names=tuple(a for a in r["matrix_names"].split(";") if a),
            nominal_memory_gb=_num(r["nominal_memory_gb"], where("gpus.csv", n)),
            cc_fallback=r["cc_fallback"],
        )
        for n, r in read_table(directory / "gpus.csv")
    )
    known = {g.model for g in gpus}
    instance_gpus = []
    for n, r in read_table(directory / "instance_gpus.csv"):
        if r["gpu_model"] not in known:
            raise DataError(
                f"GPU model {r['gpu_model']!r} is not in gpus.csv", where=where("instance_gpus.csv", n)
            )
        instance_gpus.append(
            InstanceGpu(
                cloud=r["cloud"],
                pattern=r["pattern"],
                gpu_model=r["gpu_model"],
                gpu_count=_num(r["gpu_count"], where("instance_gpus.csv", n)) if r["gpu_count"] else None,
                fractional=r["fractional"] == "yes",
                why=r["why"],
            )
        )
    families = tuple(
        Family(cloud=r["cloud"], pattern=r["pattern"], burstable=r["burstable"] == "yes")
        for _, r in read_table(directory / "families.csv")
    )
    gcp_skus = tuple(
        GcpSkuName(kind=r["kind"], key=r["key"], sku_stem=r["sku_stem"], gpu_model=r["gpu_model"])
        for _, r in read_table(directory / "gcp_skus.csv")
    )
    gcp_attachable = tuple(
        GcpAttach(
            host=r["host"],
            accelerator=r["accelerator"],
            count=int(_num(r["count"], where("gcp_attachable.csv", n))),
        )
        for n, r in read_table(directory / "gcp_attachable.csv")
    )
    archs = []
    for n, r in read_table(directory / "arch.csv"):
        if r["arch"] not in ("x86_64", "arm64"):
            raise DataError(f"arch {r['arch']!r} is x86_64 or arm64", where=where("arch.csv", n))
        archs.append(Arch(cloud=r["cloud"], pattern=r["pattern"], arch=r["arch"]))
    return Overlays(
        archs=tuple(archs),
        gpus=gpus,
        instance_gpus=tuple(instance_gpus),
        families=families,
        gcp_skus=gcp_skus,
        gcp_attachable=gcp_attachable,
    )
