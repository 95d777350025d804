"""Locks: each planned image's Python packages resolved (for its platform and Python, against its index) and
hashed, a child's on top of its parent's.

Pure: what to lock (``requests``), whether a lock still matches the policy (``state``), what moved
(``moved``). At the edge: ``resolve`` runs uv (see docs/reproducible-images.md for why uv, not pip-tools).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from imagesmith.contract import pins
from imagesmith.contract.pins import Lock, Pin
from imagesmith.errors import EnvironmentProblem, ImagesmithError, NegativeAnswer
from imagesmith.images.plan import Plan, PlannedImage

PYPI = "https://pypi.org/simple"
# Pinned so that every image of a base gets the same doctor dependency (locked with hashes like the rest):
# NVML's bindings, for the runtime probe. The doctor reads ELF files itself (pyelftools is only its tests' oracle).
DOCTOR_REQUIREMENTS = ("nvidia-ml-py==13.615.71",)
# glibc of each OS base, so the resolver picks the wheels that base can load (manylinux_2_X needs glibc >= X).
# Sources: packages.debian.org/{bullseye,bookworm,trixie}/libc6, packages.ubuntu.com/{jammy,noble}/libc6.
GLIBC = {"bullseye": "2.31", "bookworm": "2.36", "trixie": "2.41", "jammy": "2.35", "noble": "2.39"}
UV_NEWEST_MANYLINUX = (2, 40)  # the newest manylinux tag uv's --python-platform names (uv 0.13)


def platform_of(os_name: str) -> str:
    """uv's ``--python-platform`` for an OS base: its glibc's manylinux tag (capped at what uv knows)."""
    glibc = GLIBC.get(os_name, "2.28")  # unknown base: manylinux_2_28, which every current distribution has
    major, minor = (int(x) for x in glibc.split("."))
    major, minor = min((major, minor), UV_NEWEST_MANYLINUX)
    return f"x86_64-manylinux_{major}_{minor}"


@dataclass(frozen=True, kw_only=True)
class LockRequest:
    image: str
    parent: str | None
    requirements: tuple[str, ...]
    python: str
    platform: str
    index: str
    extra_index: str | None

    def inputs(self, parent: Lock | None) -> str:
        """Fingerprint of everything the policy decides about the resolution, the parent's pins included.
        Not the primary index: a mirror serves the same files (the hashes prove it), so locking against
        one does not make a lock stale."""
        text = "\n".join(
            [
                " ".join(self.requirements),
                self.python,
                self.platform,
                self.extra_index or "-",
                f"{self.parent or '-'} {parent.digest if parent else '-'}",
            ]
        )
        return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def request_for(image: PlannedImage, *, index: str = PYPI) -> LockRequest:
    requirements = DOCTOR_REQUIREMENTS if image.variant == "base" else image.pip
    return LockRequest(
        image=image.name,
        parent=image.parent,
        requirements=tuple(requirements),
        python=image.python,
        platform=platform_of(image.base.name),
        index=index,
        extra_index=image.index_url,
    )


def requests(plan: Plan, *, index: str = PYPI) -> tuple[LockRequest, ...]:
    """One request per planned image, parents before children (the plan's order)."""
    return tuple(request_for(image, index=index) for image in plan.images)


@dataclass(frozen=True, kw_only=True)
class LockState:
    image: str
    status: str  # current | stale | missing
    why: str
    lock: Lock | None


def state(plan: Plan, locks: Mapping[str, Lock], *, index: str = PYPI) -> tuple[LockState, ...]:
    """Whether each image's lock still answers its request; a stale parent makes its children stale."""
    out: dict[str, LockState] = {}
    for request in requests(plan, index=index):
        lock = locks.get(request.image)
        parent_state = out.get(request.parent) if request.parent else None
        if lock is None:
            out[request.image] = LockState(image=request.image, status="missing", why="no lock", lock=None)
            continue
        if parent_state is not None and parent_state.status != "current":
            why = f"its parent {request.parent} is {parent_state.status}"
            out[request.image] = LockState(image=request.image, status="stale", why=why, lock=lock)
            continue
        expected = request.inputs(parent_state.lock if parent_state else None)
        if lock.inputs != expected:
            out[request.image] = LockState(
                image=request.image, status="stale", why=_why_stale(request, lock), lock=lock
            )
        else:
            out[request.image] = LockState(image=request.image, status="current", why="", lock=lock)
    return tuple(out.values())


def _why_stale(request: LockRequest, lock: Lock) -> str:
    if lock.requirements != request.requirements:
        return f"the policy asks for {' '.join(request.requirements)}, the lock has {' '.join(lock.requirements)}"
    for label, old, new in (
        ("Python", lock.python, request.python),
        ("platform", lock.platform, request.platform),
        ("extra index", lock.extra_index, request.extra_index),
        ("parent", lock.parent, request.parent),
    ):
        if old != new:
            return f"the {label} changed ({old or '-'} -> {new or '-'})"
    return "its parent's lock changed"


def ancestors_pins(plan: Plan, name: str, locks: Mapping[str, Lock]) -> tuple[Pin, ...]:
    """Every pin the image's ancestors install (the child resolves within them)."""
    out: list[Pin] = []
    image = plan.image(name)
    while image.parent:
        lock = locks.get(image.parent)
        if lock is not None:
            out.extend(lock.pins)
        image = plan.image(image.parent)
    return tuple(out)


def parent_wins(
    requirements: tuple[str, ...], ancestors: tuple[Pin, ...]
) -> tuple[tuple[str, ...], list[str]]:
    """Drop each requirement that asks for another version of a package an ancestor already installs: a
    child never changes its parent's packages (TensorFlow's CUDA extra brings nvcc 12.9 into the runtime
    image; the devel image's ``nvcc==12.5.*`` would downgrade it). Returns what is left, and a note each."""
    from packaging.requirements import InvalidRequirement, Requirement

    installed = {p.key: p for p in ancestors}
    kept: list[str] = []
    notes: list[str] = []
    for text in requirements:
        try:
            req = Requirement(text)
        except InvalidRequirement:
            kept.append(text)
            continue
        pin = installed.get(pins.normalize(req.name))
        if pin is not None and req.specifier and not req.specifier.contains(pin.version, prereleases=True):
            notes.append(f"kept the parent's {pin} (the policy asks for {text})")
            continue
        kept.append(text)
    return tuple(kept), notes


def moved(old: Lock | None, new: Lock) -> list[str]:
    """``name old -> new``, ``+ name version``, ``- name version``; empty when nothing moved."""
    before = old.by_key() if old else {}
    after = new.by_key()
    lines = []
    for key in sorted(before.keys() | after.keys()):
        a, b = before.get(key), after.get(key)
        if a and b and a.version != b.version:
            lines.append(f"{b.name} {a.version} -> {b.version}")
        elif a and b and set(a.hashes) != set(b.hashes):
            lines.append(f"{b.name} {b.version} (hashes changed)")
        elif b and not a:
            lines.append(f"+ {b.name} {b.version}")
        elif a and not b:
            lines.append(f"- {a.name} {a.version}")
    return lines


# ---- the edge: uv ---------------------------------------------------------------------------------------
def uv_binary() -> str:
    try:
        from uv import find_uv_bin  # the uv wheel is a dependency of imagesmith

        return str(find_uv_bin())
    except (ImportError, FileNotFoundError):
        found = shutil.which("uv")
        if found is None:
            raise EnvironmentProblem(
                "uv not found", hint="pip install uv (imagesmith depends on it)"
            ) from None
        return found


def uv_version(uv: str) -> str:
    out = subprocess.run([uv, "--version"], capture_output=True, text=True, check=False).stdout.split()
    return " ".join(out[:2]) if out else "uv"


def resolve(
    request: LockRequest,
    *,
    parent: Lock | None,
    ancestors: tuple[Pin, ...],
    previous: Lock | None,
    upgrade: bool,
    uv: str,
    resolver: str,
    ca_cert: Path | None = None,
) -> Lock:
    """Resolve ``request`` within the ancestors' pins; keep ``previous``'s pins where they still fit unless
    ``upgrade``. Only the packages this image adds end up in its lock."""
    wanted, _notes = parent_wins(request.requirements, ancestors)
    with tempfile.TemporaryDirectory(prefix="imagesmith-lock-") as tmp:
        work = Path(tmp)
        (work / "requirements.in").write_text("".join(f"{r}\n" for r in wanted), encoding="utf-8")
        (work / "constraints.txt").write_text(
            "".join(f"{p.name}=={p.version}\n" for p in ancestors), encoding="utf-8"
        )
        out = work / "requirements.txt"
        if previous is not None and not upgrade:
            # uv prefers the versions already in its output file: an unchanged package keeps its pin.
            out.write_text(previous.dumps(), encoding="utf-8")
        # Relative paths, run in the temporary folder: uv writes the input's path into its "# via -r" notes,
        # and a lock that names a temporary folder would differ on every run (and leak the machine's paths).
        cmd = [
            uv,
            "pip",
            "compile",
            "requirements.in",
            "--constraint",
            "constraints.txt",
            "--output-file",
            out.name,
            "--generate-hashes",
            "--no-header",
            "--quiet",
            "--python-version",
            request.python,
            "--python-platform",
            request.platform,
            "--index-url",
            request.index,
        ]
        if request.extra_index:
            cmd += ["--extra-index-url", request.extra_index]
        if upgrade:
            cmd.append("--upgrade")
        env = {**os.environ, "UV_NO_CONFIG": "1"}
        if ca_cert is not None:
            env["SSL_CERT_FILE"] = str(ca_cert)
        done = subprocess.run(
            cmd, cwd=work, capture_output=True, text=True, env=env, check=False, timeout=1800
        )
        if done.returncode != 0:
            raise _resolution_error(request, done.stderr)
        resolved = pins.parse_requirements(out.read_text(encoding="utf-8"), f"uv output for {request.image}")
    inherited = {p.key for p in ancestors}
    own = tuple(p for p in resolved if p.key not in inherited)
    return Lock(
        image=request.image,
        requirements=request.requirements,
        parent=request.parent,
        python=request.python,
        platform=request.platform,
        index=request.index,
        extra_index=request.extra_index,
        resolver=resolver,
        inputs=request.inputs(parent),
        pins=own,
    )


def _resolution_error(request: LockRequest, stderr: str) -> Exception:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    network = any(
        marker in stderr
        for marker in ("Failed to fetch", "error sending request", "dns error", "Connection refused", "tls")
    )
    detail = " ".join(lines[:4])[:400] or "uv failed without a message"
    if network:
        return EnvironmentProblem(
            f"cannot lock {request.image}: the index did not answer: {detail}",
            where=request.extra_index or request.index,
            hint="check the network/proxy (--ca-cert), or --index-url for a mirror",
        )
    return NegativeAnswer(
        f"cannot lock {request.image}: {detail}",
        where=f"base_images/{request.image}",
        hint="the policy's requirements do not resolve within the parent's pins",
    )


def lock_path(root: Path, image: str) -> Path:
    return root / "base_images" / image / pins.LOCK_NAME


def read_locks(root: Path, plan: Plan) -> dict[str, Lock]:
    """The committed locks of the planned images under ``root`` (absent ones are simply not in the map)."""
    found: dict[str, Lock] = {}
    for image in plan.images:
        path = lock_path(root, image.name)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise EnvironmentProblem(f"cannot read: {exc.strerror}", where=str(path)) from None
        found[image.name] = pins.parse_lock(text, str(path))
    return found


@dataclass(frozen=True, kw_only=True)
class LockResult:
    locked: int
    current: int
    stale_left: tuple[str, ...]


def lock_images(
    plan: Plan,
    root: Path,
    *,
    wanted: frozenset[str],
    upgrade: bool,
    index: str,
    ca_cert: Path | None,
    echo: Callable[[str], object],
) -> LockResult:
    """Lock the wanted images, parents first, each within its freshly locked ancestors; write each lock as
    soon as it resolves (a failure later keeps the earlier ones)."""
    locks = read_locks(root, plan)
    uv = uv_binary()
    resolver = uv_version(uv)
    locked = current = 0
    failed: dict[str, ImagesmithError] = {}
    for request in requests(plan, index=index):
        if request.image not in wanted:
            continue
        states = {s.image: s for s in state(plan, locks, index=index)}
        mine = states[request.image]
        if mine.status == "current" and not upgrade:
            current += 1
            continue
        if request.parent in failed:
            failed[request.image] = NegativeAnswer(f"not locked: its parent {request.parent} failed to lock")
            echo(f"not locked {request.image}: its parent {request.parent} failed")
            continue
        previous = locks.get(request.image)
        parent = locks.get(request.parent) if request.parent else None
        for note in parent_wins(request.requirements, ancestors_pins(plan, request.image, locks))[1]:
            echo(f"{request.image}: {note}")
        try:
            new = resolve(
                request,
                parent=parent,
                ancestors=ancestors_pins(plan, request.image, locks),
                previous=previous,
                upgrade=upgrade,
                uv=uv,
                resolver=resolver,
                ca_cert=ca_cert,
            )
        except ImagesmithError as exc:
            # Other subtrees of the plan still lock; the command fails at the end, naming this one first.
            failed[request.image] = exc
            echo(f"FAILED {request.image}: {exc.one_line()}")
            continue
        changes = moved(previous, new)
        path = lock_path(root, request.image)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(new.dumps(), encoding="utf-8")
        except OSError as exc:
            raise EnvironmentProblem(f"cannot write: {exc.strerror}", where=str(path)) from None
        locks[request.image] = new
        locked += 1
        why = "new" if previous is None else ("--upgrade" if mine.status == "current" else mine.why)
        moves = f"; {len(changes)} moved" if previous is not None else ""
        echo(f"locked {request.image}: {len(new.pins)} packages ({why}){moves}")
        for line in changes if previous is not None else ():
            echo(f"  {line}")
    stale = tuple(
        s.image for s in state(plan, locks, index=index) if s.status == "stale" and s.image not in wanted
    )
    for name in stale:
        echo(f"stale now: {name} (its parent's lock moved; run `imagesmith images lock {name}`)")
    if failed:
        first = next(iter(failed.values()))
        echo(f"{locked} locked, {current} up to date, {len(failed)} failed: {', '.join(failed)}")
        raise first
    return LockResult(locked=locked, current=current, stale_left=stale)
