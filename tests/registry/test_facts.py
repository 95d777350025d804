"""Image facts without pulling, against real parts: Debian's ``docker-registry`` (open, and with htpasswd auth
over the same storage), an image built and pushed by the test on the real engine, the digest cache on disk and
the engine as the fallback. Requests are counted in the registry's own access log, never timed."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from imagesmith.contract.labels import ImageLabels
from imagesmith.errors import EnvironmentProblem, NegativeAnswer
from imagesmith.registry.facts import ConfigCache, image_facts
from tests import docker_harness

pytestmark = pytest.mark.docker

USER, PASSWORD = "imagesmith", "s3cret-pw"
SPEC = "torch==2.11.0+cu128"
LABELS = ImageLabels(
    framework=SPEC, cuda="12.8", min_driver="525.60.13", sm=("sm_75", "sm_80", "sm_90"), variant="runtime"
).to_labels()
# A CUDA-only image: no framework build the matrix resolves, only the kernels it promises.
CUDA_LABELS = ImageLabels(
    framework="cuda==12.8", cuda="12.8", sm=("sm_80", "sm_90"), variant="devel"
).to_labels()
RunCli = Callable[..., subprocess.CompletedProcess[str]]


class Registries:
    def __init__(self, open_: docker_harness.Registry, auth: docker_harness.Registry, ref: str) -> None:
        self.open = open_
        self.auth = auth
        self.ref = ref  # pushed through the open registry
        self.path = ref.split("/", 1)[1]
        self.cuda_only = ref.replace("/team/torch:labelled", "/team/cuda:sm-only")

    def via_auth(self) -> str:
        return f"{self.auth.address}/{self.path}"


def _skip_or_fail(why: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"CI is set, so the registry tests must run: {why}")
    pytest.skip(why)


@pytest.fixture(scope="module")
def registries(
    tmp_path_factory: pytest.TempPathFactory, docker_engine: docker_harness.Engine
) -> Iterator[Registries]:
    root = tmp_path_factory.mktemp("facts-registry")
    started: list[docker_harness.Registry] = []
    try:
        try:
            started.append(docker_harness.Registry(root / "open", storage=root / "data"))
            started.append(
                docker_harness.Registry(root / "auth", users={USER: PASSWORD}, storage=root / "data")
            )
        except docker_harness.NoEngine as exc:
            _skip_or_fail(f"no local docker-registry here: {exc}")
        open_, auth = started
        ref = f"{open_.address}/team/torch:labelled"
        _build_and_push(docker_engine.client, ref, root / "ctx", LABELS)
        _build_and_push(
            docker_engine.client,
            ref.replace("/team/torch:labelled", "/team/cuda:sm-only"),
            root / "ctx2",
            CUDA_LABELS,
        )
        yield Registries(open_, auth, ref)
    finally:
        for registry in started:
            registry.stop()
        _forget(docker_engine.client, [r.address for r in started])


def _build_and_push(client: Any, ref: str, ctx: Path, image_labels: dict[str, str]) -> None:
    ctx.mkdir()
    (ctx / "marker").write_text("imagesmith registry facts test\n")
    labels = " ".join(f'{key}="{value}"' for key, value in image_labels.items())
    (ctx / "Dockerfile").write_text(
        f"FROM scratch\nCOPY marker /marker\nLABEL {labels}\nENV NVIDIA_REQUIRE_CUDA=cuda>=12.8 IMAGESMITH_TEST=1\n"
    )
    client.images.build(path=str(ctx), tag=ref, rm=True)
    repository, tag = ref.rsplit(":", 1)
    for line in client.api.push(repository, tag=tag, stream=True, decode=True):
        if "error" in line:
            pytest.fail(f"docker push {ref} failed: {line['error']}")


def _forget(client: Any, addresses: list[str]) -> None:
    for image in client.images.list():
        for tag in image.tags:
            if any(tag.startswith(f"{address}/") for address in addresses) or tag.startswith("127.0.0.1:9/"):
                with contextlib.suppress(Exception):
                    client.images.remove(tag)


def _docker_config(directory: Path, registry: str, user: str, password: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    (directory / "config.json").write_text(json.dumps({"auths": {registry: {"auth": auth}}}))
    return directory


def _facts_in_process(ref: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``image_facts`` (registry only) in a fresh interpreter with ``env`` (DOCKER_CONFIG, XDG_CACHE_HOME):
    its JSON on stdout, or its one-line error on stderr with the error's exit code."""
    code = (
        "import json, sys\n"
        "from imagesmith.errors import ImagesmithError\n"
        "from imagesmith.registry.facts import image_facts\n"
        "try:\n"
        "    print(json.dumps(image_facts(sys.argv[1], engine=False).to_json()))\n"
        "except ImagesmithError as exc:\n"
        "    print(exc.one_line(), file=sys.stderr)\n"
        "    sys.exit(exc.exit_code)\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code, ref],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=120,
    )


# ---- the registry, anonymous ------------------------------------------------------------------------------
def test_anonymous_registry_gives_labels_and_env(registries: Registries, tmp_path: Path) -> None:
    facts = image_facts(registries.ref, cache=ConfigCache(tmp_path), engine=False)
    assert facts.source == "registry"
    assert facts.labels["io.imagesmith.framework"] == SPEC
    assert facts.promised.sm == ("sm_75", "sm_80", "sm_90") and facts.promised.min_driver == "525.60.13"
    assert facts.env["NVIDIA_REQUIRE_CUDA"] == "cuda>=12.8" and facts.env["IMAGESMITH_TEST"] == "1"
    assert facts.digest and facts.digest.startswith("sha256:")
    assert facts.config_digest and facts.config_digest.startswith("sha256:")


def test_second_call_is_served_from_the_digest_cache(registries: Registries, tmp_path: Path) -> None:
    cache = ConfigCache(tmp_path / "cache")
    log = registries.open
    blobs, manifests = log.requests("/blobs/"), log.requests("/manifests/")
    first = image_facts(registries.ref, cache=cache, engine=False)
    assert first.source == "registry"
    assert log.requests("/blobs/") == blobs + 1 and log.requests("/manifests/") == manifests + 1

    second = image_facts(registries.ref, cache=cache, engine=False)
    assert second.source == "cache" and second.labels == first.labels and second.env == first.env
    # One manifest request resolved the tag; the config blob was not asked for again.
    assert log.requests("/blobs/") == blobs + 1 and log.requests("/manifests/") == manifests + 2

    assert first.config_digest is not None
    entry = tmp_path / "cache" / f"{first.config_digest.removeprefix('sha256:')}.json"
    assert f"sha256:{hashlib.sha256(entry.read_bytes()).hexdigest()}" == first.config_digest
    # A cache entry that does not match its digest is never served: dropped and fetched again.
    entry.write_bytes(entry.read_bytes().replace(b"torch", b"jaxxx"))
    third = image_facts(registries.ref, cache=cache, engine=False)
    assert third.source == "registry" and third.labels["io.imagesmith.framework"] == SPEC
    assert log.requests("/blobs/") == blobs + 2
    assert f"sha256:{hashlib.sha256(entry.read_bytes()).hexdigest()}" == first.config_digest


def test_an_absent_tag_is_a_negative_answer_naming_the_ref(registries: Registries, tmp_path: Path) -> None:
    ref = registries.ref.replace(":labelled", ":nope")
    with pytest.raises(NegativeAnswer) as info:
        image_facts(ref, cache=ConfigCache(tmp_path), engine=False)
    line = info.value.one_line()
    assert ref in line and registries.open.address in line and "\n" not in line


# ---- the registry with htpasswd auth ----------------------------------------------------------------------
def test_auth_registry_refuses_without_credentials_in_one_line(
    registries: Registries, tmp_path: Path
) -> None:
    env = {"DOCKER_CONFIG": str(tmp_path / "empty"), "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    result = _facts_in_process(registries.via_auth(), env)
    assert result.returncode == 3, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert f"registry {registries.auth.address} wants credentials" in result.stderr
    assert registries.via_auth() in result.stderr


def test_wrong_credentials_are_refused_in_one_line(registries: Registries, tmp_path: Path) -> None:
    config = _docker_config(tmp_path / "docker", registries.auth.address, USER, "wrong")
    result = _facts_in_process(registries.via_auth(), {"DOCKER_CONFIG": str(config)})
    assert result.returncode == 3 and result.stderr.count("\n") == 1, result.stderr
    assert registries.auth.address in result.stderr and "401" in result.stderr


def test_auth_registry_works_with_docker_config_credentials(registries: Registries, tmp_path: Path) -> None:
    config = _docker_config(tmp_path / "docker", f"http://{registries.auth.address}", USER, PASSWORD)
    env = {"DOCKER_CONFIG": str(config), "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    first = _facts_in_process(registries.via_auth(), dict(env))
    assert first.returncode == 0, first.stderr
    doc = json.loads(first.stdout)
    assert doc["source"] == "registry" and doc["labels"]["io.imagesmith.framework"] == SPEC
    second = json.loads(_facts_in_process(registries.via_auth(), dict(env)).stdout)
    assert second["source"] == "cache" and second["config_digest"] == doc["config_digest"]
    assert (tmp_path / "xdg" / "imagesmith" / "registry" / f"{doc['config_digest'][7:]}.json").is_file()


# ---- the engine as the fallback ---------------------------------------------------------------------------
def test_engine_fallback_when_the_registry_cannot_be_reached(
    registries: Registries, docker_engine: docker_harness.Engine, tmp_path: Path
) -> None:
    unreachable = "127.0.0.1:9/team/torch:fallback"  # the discard port: nothing listens
    docker_engine.client.images.get(registries.ref).tag("127.0.0.1:9/team/torch", "fallback")
    facts = image_facts(unreachable, cache=ConfigCache(tmp_path), timeout=5)
    assert facts.source == "engine" and facts.labels["io.imagesmith.framework"] == SPEC
    assert facts.env["IMAGESMITH_TEST"] == "1"
    assert facts.registry_error and "127.0.0.1:9 cannot be reached" in facts.registry_error
    assert not list(tmp_path.iterdir())  # nothing from the engine goes into the digest cache


def test_neither_registry_nor_engine_is_one_error_with_both_reasons(tmp_path: Path) -> None:
    ref = "127.0.0.1:9/team/torch:nowhere"
    with pytest.raises(EnvironmentProblem) as info:
        image_facts(ref, cache=ConfigCache(tmp_path), timeout=5)
    line = info.value.one_line()
    assert ref in line and "registry:" in line and "local engine:" in line and "\n" not in line


# ---- the CLI: doctor --image and pick --image -------------------------------------------------------------
def test_doctor_image_reads_the_registry(registries: Registries, run_cli: RunCli, tmp_path: Path) -> None:
    env = {"XDG_CACHE_HOME": str(tmp_path / "xdg")}
    result = run_cli("doctor", "--image", registries.ref, "--json", "--no-probe", env=env)
    doc = json.loads(result.stdout)
    assert doc["image"] == registries.ref and doc["source"] == "registry", result.stderr
    assert doc["labels"]["io.imagesmith.cuda"] == "12.8" and doc["digest"].startswith("sha256:")
    assert result.returncode == 1  # no GPU on this machine: the image's CUDA cannot run here
    again = run_cli("doctor", "--image", registries.ref, "--no-probe", env=env)
    assert "labels read from the cache at sha256:" in again.stdout, again.stdout


def test_doctor_image_json_when_nothing_answers(run_cli: RunCli, tmp_path: Path) -> None:
    ref = "127.0.0.1:9/team/torch:nowhere"
    result = run_cli("doctor", "--image", ref, "--json", "--no-probe", env={"XDG_CACHE_HOME": str(tmp_path)})
    doc = json.loads(result.stdout)
    assert result.returncode == 3 and doc["findings"][0]["code"] == "IMAGE_UNREADABLE"
    assert ref in doc["findings"][0]["message"] and "Traceback" not in result.stderr


def test_pick_image_reads_the_framework_from_the_labels(
    registries: Registries, run_cli: RunCli, tmp_path: Path
) -> None:
    env = {"XDG_CACHE_HOME": str(tmp_path / "xdg")}
    ok = run_cli("pick", "--image", registries.ref, "--json", env=env)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["query"]["image"] == SPEC
    volta = run_cli("pick", "--image", registries.ref, "--gpu", "V100", "--json", env=env)
    assert volta.returncode == 1 and json.loads(volta.stdout)["choice"] is None
    assert "sm_70" in volta.stderr and volta.stderr.count("\n") == 1


def test_pick_image_that_cannot_be_read_exits_2_naming_the_flag(run_cli: RunCli, tmp_path: Path) -> None:
    ref = "127.0.0.1:9/team/torch:nowhere"
    result = run_cli("pick", "--image", ref, env={"XDG_CACHE_HOME": str(tmp_path)})
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert f"--image '{ref}'" in result.stderr and "127.0.0.1:9 cannot be reached" in result.stderr


def test_pick_image_judges_a_cuda_only_image_on_its_kernel_labels(
    registries: Registries, run_cli: RunCli, tmp_path: Path
) -> None:
    env = {"XDG_CACHE_HOME": str(tmp_path / "xdg")}
    hopper = run_cli("pick", "--image", registries.cuda_only, "--gpu", "H100", "--json", env=env)
    assert hopper.returncode == 0 and json.loads(hopper.stdout)["choice"] is not None, hopper.stderr
    turing = run_cli("pick", "--image", registries.cuda_only, "--gpu", "T4", "--json", env=env)
    assert turing.returncode == 1 and "sm_75" in turing.stderr, turing.stderr
