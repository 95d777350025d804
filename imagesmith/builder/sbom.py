"""The image's CycloneDX SBOM: written inside the image by the Dockerfile's last step, read back by the
builder and ``images diff``.

Writing uses CycloneDX's own library (cyclonedx-python-lib, hash-locked in ``sbom-tool.lock``, installed
into /tmp and deleted in the same step, so it never is in a layer); reading needs only ``json``. Components: every installed Debian package
(from dpkg's status file) and every distribution of the image's Python environment, each with a purl. A
Python component carries the SHA-256 of its installed RECORD (which lists every installed file's hash), so
two builds installed the same bits exactly when those agree.

    PYTHONPATH=/tmp/sbom-tool python3 -m imagesmith.builder.sbom OUT --name NAME --version VERSION

The reader is the one home of the format for imagesmith (the builder's manifest and ``images diff``).
"""

from __future__ import annotations

import hashlib
import json
import sys
import sysconfig
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

RECORD_PROPERTY = "imagesmith:record-sha256"
KIND_PROPERTY = "imagesmith:package-kind"


@dataclass(frozen=True, kw_only=True)
class Package:
    """One component of an SBOM: ``kind`` is ``deb`` or ``python``; ``digest`` the installed RECORD's hash."""

    kind: str
    name: str
    version: str
    digest: str | None = None

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.name.lower()}"


def dpkg_packages(root: Path) -> list[Package]:
    """Installed packages of dpkg's status file under ``root`` (``Status: install ok installed`` only)."""
    try:
        text = (root / "var/lib/dpkg/status").read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    out = []
    for stanza in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if line[:1].isspace() or ":" not in line:
                continue
            key, _, value = line.partition(":")
            fields[key] = value.strip()
        if fields.get("Status") == "install ok installed" and fields.get("Package"):
            name = fields["Package"]
            if fields.get("Architecture") not in (None, "all", ""):
                name = f"{name}:{fields['Architecture']}"
            out.append(Package(kind="deb", name=name, version=fields.get("Version", "")))
    return out


def python_packages(site: Path) -> list[Package]:
    out = []
    for dist in metadata.distributions(path=[str(site)]):
        name = dist.metadata["Name"]
        if not name:
            continue
        record = dist.read_text("RECORD") or ""
        digest = "sha256:" + hashlib.sha256(record.encode("utf-8")).hexdigest() if record else None
        out.append(Package(kind="python", name=name, version=dist.version, digest=digest))
    return out


def _os_release(root: Path) -> dict[str, str]:
    try:
        text = (root / "etc/os-release").read_text(encoding="utf-8")
    except OSError:
        return {}
    pairs = (line.split("=", 1) for line in text.splitlines() if "=" in line)
    return {k: v.strip().strip('"') for k, v in pairs}


def generate(*, name: str, version: str, root: Path, site: Path) -> str:
    """The CycloneDX 1.6 JSON of the filesystem at ``root`` with its Python environment at ``site``."""
    from cyclonedx.model import Property
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.output.json import JsonV1Dot6
    from packageurl import PackageURL

    release = _os_release(root)
    distro = f"{release.get('ID', 'debian')}-{release.get('VERSION_ID', '')}".rstrip("-")
    bom = Bom()
    root_component = Component(name=name, version=version, type=ComponentType.CONTAINER, bom_ref=name)
    bom.metadata.component = root_component
    seen: set[str] = set()
    packages = sorted(
        dpkg_packages(root) + python_packages(site), key=lambda p: (p.kind, p.name.lower(), p.version)
    )
    for package in packages:
        ref = f"{package.key}@{package.version}"
        if ref in seen:
            continue
        seen.add(ref)
        if package.kind == "deb":
            base, _, arch = package.name.partition(":")
            purl = PackageURL(
                type="deb",
                namespace=release.get("ID", "debian"),
                name=base,
                version=package.version,
                qualifiers={"arch": arch, "distro": distro} if arch else {"distro": distro},
            )
        else:
            purl = PackageURL(type="pypi", name=package.name.lower(), version=package.version)
        properties = [Property(name=KIND_PROPERTY, value=package.kind)]
        if package.digest:
            properties.append(Property(name=RECORD_PROPERTY, value=package.digest))
        bom.components.add(
            Component(
                name=package.name,
                version=package.version,
                type=ComponentType.LIBRARY,
                purl=purl,
                bom_ref=ref,
                properties=properties,
            )
        )
    # Everything installed is a direct part of the image (dpkg and pip know no "top level" that we could trust).
    bom.register_dependency(root_component, list(bom.components))
    return str(JsonV1Dot6(bom).output_as_string(indent=2))


def read_packages(text: str) -> tuple[Package, ...]:
    """The components of an SBOM this module wrote (any CycloneDX JSON with purls reads the same way)."""
    document: Any = json.loads(text)
    out = []
    for component in document.get("components") or ():
        properties = {p.get("name"): p.get("value") for p in component.get("properties") or ()}
        purl = str(component.get("purl") or "")
        kind = properties.get(KIND_PROPERTY) or ("deb" if purl.startswith("pkg:deb/") else "python")
        name = str(component.get("name", ""))
        if kind == "deb" and "arch=" in purl and ":" not in name:
            name = f"{name}:{purl.split('arch=', 1)[1].split('&', 1)[0]}"
        out.append(
            Package(
                kind=str(kind),
                name=name,
                version=str(component.get("version", "")),
                digest=properties.get(RECORD_PROPERTY),
            )
        )
    return tuple(out)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 5 or args[1] != "--name" or args[3] != "--version":
        print("usage: python -m imagesmith.builder.sbom OUT --name NAME --version VERSION", file=sys.stderr)
        return 2
    out = Path(args[0])
    text = generate(
        name=args[2], version=args[4], root=Path("/"), site=Path(sysconfig.get_paths()["purelib"])
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n", encoding="utf-8")
    print(f"SBOM: {len(read_packages(text))} components -> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
