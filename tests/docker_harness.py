"""A real Docker engine for the test suite, and the OS base image the curated images start from.

``engine()`` uses the engine ``DOCKER_HOST`` (or the default socket) names when it answers; otherwise,
as root, it starts ``dockerd`` (no iptables, no bridge: builds use the host network) with its own
pidfile and stops only that daemon at the end. ``os_base()`` creates ``debian:bookworm`` locally from
``debootstrap --variant=minbase`` + ``docker import`` because no registry is reachable; the rootfs
tarball is cached in ~/.cache/imagesmith so a later run imports it in seconds.

``NoEngine`` means no engine can be had at all; callers skip on it, except under ``CI`` where they fail.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

OS_BASE_TAG = "imagesmith-test/debian:bookworm-minbase"
DEBIAN_MIRROR = os.environ.get("IMAGESMITH_DEBIAN_MIRROR", "http://deb.debian.org/debian")
STATE_DIR = Path("/run/imagesmith-test-dockerd")
DEFAULT_SOCKET = "unix:///var/run/docker.sock"


class NoEngine(Exception):
    """No Docker engine answers and none can be started here; the message says why."""


@dataclass
class Engine:
    host: str
    client: Any
    process: subprocess.Popen[bytes] | None
    log: Path | None

    def stop(self) -> None:
        """Stop the daemon this harness started (and nothing else)."""
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)
        self.process = None


def cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "imagesmith"


def ensure_packages(commands: dict[str, str]) -> None:
    """Install the Debian package of each missing command (root only); ``{command: package}``."""
    missing = sorted({package for command, package in commands.items() if not _which(command)})
    if not missing:
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise NoEngine(
            f"missing {', '.join(missing)} and cannot install it here (apt-get install {' '.join(missing)})"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
    ):
        result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
        if result.returncode != 0:
            raise NoEngine(f"{' '.join(command)} failed: {(result.stderr or result.stdout).strip()[-300:]}")


def _which(command: str) -> str | None:
    return shutil.which(command) or next(
        (str(p) for p in (Path("/usr/sbin") / command, Path("/sbin") / command) if p.exists()), None
    )


def _client(host: str) -> Any | None:
    import docker
    from docker.errors import DockerException

    try:
        client = docker.DockerClient(base_url=host, timeout=600)
        client.ping()
    except (DockerException, OSError):
        return None
    return client


def _wait_for(host: str, process: subprocess.Popen[bytes], log: Path, seconds: float = 90) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        client = _client(host)
        if client is not None:
            return client
        if process.poll() is not None:
            raise NoEngine(f"dockerd exited with {process.returncode}: {_tail(log)}")
        time.sleep(0.5)
    process.terminate()
    raise NoEngine(f"dockerd did not answer within {seconds:.0f}s: {_tail(log)}")


def _tail(log: Path) -> str:
    try:
        lines = log.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "no log"
    return " | ".join(lines[-3:]) or "empty log"


def engine() -> Engine:
    """An answering engine: the configured one, or a dockerd started here (root only)."""
    host = os.environ.get("DOCKER_HOST") or DEFAULT_SOCKET
    client = _client(host)
    if client is not None:
        return Engine(host=host, client=client, process=None, log=None)
    if os.environ.get("DOCKER_HOST"):
        raise NoEngine(f"DOCKER_HOST={host} does not answer (the harness starts dockerd only locally)")
    if os.geteuid() != 0:
        raise NoEngine("no engine answers and starting dockerd needs root")
    ensure_packages({"dockerd": "docker.io"})
    dockerd = _which("dockerd")
    if dockerd is None:
        raise NoEngine("no engine answers and dockerd is not installed (apt-get install docker.io)")
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    log = STATE_DIR / "dockerd.log"
    pidfile = STATE_DIR / "dockerd.pid"
    with contextlib.suppress(FileNotFoundError):
        # A pidfile left by a killed earlier run would make dockerd refuse to start.
        stale = int(pidfile.read_text().strip() or 0)
        if stale and not Path(f"/proc/{stale}").exists():
            pidfile.unlink()
    command = [
        dockerd,
        "--iptables=false",
        "--ip6tables=false",
        "--bridge=none",
        f"--pidfile={pidfile}",
        f"--host={DEFAULT_SOCKET}",
    ]
    with log.open("wb") as handle:
        process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)
    client = _wait_for(DEFAULT_SOCKET, process, log)
    return Engine(host=DEFAULT_SOCKET, client=client, process=process, log=log)


def _rootfs_tarball() -> Path:
    """The debootstrapped bookworm minbase rootfs as a tar, built once and cached."""
    tarball = cache_dir() / "debian-bookworm-minbase.tar"
    if tarball.is_file():
        return tarball
    if os.geteuid() != 0:
        raise NoEngine("creating the OS base image with debootstrap needs root")
    ensure_packages({"debootstrap": "debootstrap"})
    debootstrap = _which("debootstrap")
    if debootstrap is None:
        raise NoEngine("debootstrap is not installed (apt-get install debootstrap)")
    tarball.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="imagesmith-rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        result = subprocess.run(
            [debootstrap, "--variant=minbase", "bookworm", str(rootfs), DEBIAN_MIRROR],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise NoEngine(f"debootstrap failed: {(result.stdout + result.stderr).strip().splitlines()[-1:]}")
        # What a slim image leaves out: downloaded .debs and package lists (apt-get update refetches).
        for leftover in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for path in (rootfs / leftover).glob("*"):
                if path.is_file():
                    path.unlink()
        partial = tarball.with_suffix(".partial")
        subprocess.run(["tar", "-C", str(rootfs), "--numeric-owner", "-cf", str(partial), "."], check=True)
        partial.replace(tarball)
    return tarball


def os_base(client: Any) -> str:
    """``OS_BASE_TAG`` in the engine, imported from the cached debootstrap rootfs when missing."""
    from docker.errors import ImageNotFound

    try:
        client.images.get(OS_BASE_TAG)
        return OS_BASE_TAG
    except ImageNotFound:
        pass
    tarball = _rootfs_tarball()
    repository, tag = OS_BASE_TAG.rsplit(":", 1)
    client.api.import_image_from_file(
        str(tarball),
        repository=repository,
        tag=tag,
        changes=[
            'CMD ["bash"]',
            "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        ],
    )
    client.images.get(OS_BASE_TAG)
    return OS_BASE_TAG


class Registry:
    """A throwaway local registry (Debian's ``docker-registry``) on 127.0.0.1, which the engine treats
    as insecure by default, so ``--push`` is tested against a real registry without any network."""

    def __init__(
        self, root: Path, *, users: dict[str, str] | None = None, storage: Path | None = None
    ) -> None:
        """``users`` turns on htpasswd (basic) auth for them; ``storage`` shares another registry's blobs
        (push to an open one, read through an authenticated one). Every request is logged to ``log``."""
        ensure_packages({"docker-registry": "docker-registry"})
        import socket

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"
        root.mkdir(parents=True, exist_ok=True)
        auth = ""
        if users:
            ensure_packages({"htpasswd": "apache2-utils"})
            lines = []
            for user, password in users.items():
                made = subprocess.run(
                    [str(_which("htpasswd")), "-nbB", user, password],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                lines.append(made.stdout.strip())
            (root / "htpasswd").write_text("\n".join(lines) + "\n")
            auth = f"auth: {{htpasswd: {{realm: imagesmith-test, path: {root / 'htpasswd'}}}}}\n"
        config = root / "registry.yml"
        config.write_text(
            "version: 0.1\n"
            "log: {level: info, accesslog: {disabled: false}}\n"
            f"storage: {{filesystem: {{rootdirectory: {storage or root / 'data'}}}, delete: {{enabled: true}}}}\n"
            f"http: {{addr: '{self.address}'}}\n" + auth
        )
        self.log = root / "registry.log"
        with self.log.open("wb") as handle:
            self.process = subprocess.Popen(
                [str(_which("docker-registry")), "serve", str(config)],
                stdout=handle,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self._answers():
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        self.stop()
        raise NoEngine(f"docker-registry did not start: {_tail(self.log)}")

    def get(self, path: str, accept: str | None = None) -> tuple[bytes, dict[str, str]] | None:
        import urllib.error
        import urllib.request

        request = urllib.request.Request(
            f"http://{self.address}{path}", headers={"Accept": accept} if accept else {}
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(request, timeout=5) as response:
                return response.read(), dict(response.headers)
        except (urllib.error.URLError, OSError):
            return None

    def _answers(self) -> bool:
        """The registry answers HTTP (a 401 from an authenticated one counts)."""
        import urllib.error
        import urllib.request

        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(f"http://{self.address}/v2/", timeout=5):
                return True
        except urllib.error.HTTPError:
            return True
        except (urllib.error.URLError, OSError):
            return False

    def requests(self, needle: str) -> int:
        """How many requests whose line in the registry's log contains ``needle`` (e.g. ``/blobs/``)."""
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return 0
        return sum(1 for line in text.splitlines() if '"GET ' in line and needle in line)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
