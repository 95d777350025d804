"""Runs a build: parents before children, independent images on ``--jobs`` threads, nothing lost on failure.

Each image goes through: resolve its base, hash its inputs, skip when the tagged image already carries
that hash, else build untagged, smoke-test, and only then tag (so a failing image never hides behind a
tag a later no-op run would trust), measure, inventory and push.
"""

from __future__ import annotations

import hashlib
import json
import sys
import threading
import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import ExitStack
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Protocol

from imagesmith.builder import engine, inputs, sbom, schedule, sizes, smoke, wheel
from imagesmith.builder.certserve import CertServer
from imagesmith.builder.model import (
    BUILT,
    FAILED,
    SKIPPED,
    UNCHANGED,
    BuildOptions,
    ImageResult,
    Package,
    SbomFile,
)
from imagesmith.contract import labels as labels_contract
from imagesmith.contract.labels import INPUT_HASH, ImageLabels
from imagesmith.contract.plan_json import Framework, PlannedImage
from imagesmith.contract.tags import ImageRef
from imagesmith.errors import EnvironmentProblem
from imagesmith.registry.client import Manifest, Registry

LOG_TAIL = 15


class Reporter(Protocol):
    def update(self, name: str, state: str, detail: str = "") -> None: ...


class _ImageLog:
    """The per-image log file, plus the last lines kept for the summary."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle = path.open("w", encoding="utf-8")
        self.tail: deque[str] = deque(maxlen=LOG_TAIL)
        self._lock = threading.Lock()

    def __call__(self, line: str) -> None:
        with self._lock:
            self._handle.write(line + "\n")
            self._handle.flush()
            self.tail.append(line)

    def close(self) -> None:
        self._handle.close()


def _facts_cache(image_id: str) -> Path:
    return wheel.cache_dir() / "build-facts" / f"{image_id.replace(':', '-')}.json"


def _load_facts(image_id: str) -> dict[str, Any] | None:
    try:
        data = json.loads(_facts_cache(image_id).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _store_facts(image_id: str, facts: dict[str, Any]) -> None:
    path = _facts_cache(image_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{threading.get_ident()}.tmp")
    tmp.write_text(json.dumps(facts, sort_keys=True), encoding="utf-8")
    tmp.replace(path)


class Builder:
    def __init__(self, options: BuildOptions, client: Any, reporter: Reporter) -> None:
        self.options = options
        self.client = client
        self.reporter = reporter
        self.plan = options.plan
        self.index = options.plan.by_name()
        self.layer_cache = sizes.LayerSizeCache(wheel.cache_dir() / "layer-gzip-sizes.json")
        self.ca_url: str | None = None
        self.results: dict[str, ImageResult] = {}
        self.selected = frozenset(options.selected)
        self._registries: dict[str, Registry] = {}
        self._registries_lock = threading.Lock()

    def _registry(self, ref: ImageRef) -> Registry:
        host = ref.registry or "registry-1.docker.io"
        with self._registries_lock:
            if host not in self._registries:
                self._registries[host] = Registry.for_ref(ref)
            return self._registries[host]

    def _remote(self, tag: str) -> tuple[ImageRef, Manifest] | None:
        """The registry's manifest for ``tag``, or None when the registry has no such tag."""
        ref = ImageRef.parse(tag)
        manifest = self._registry(ref).manifest(ref)
        return (ref, manifest) if manifest is not None else None

    # -- the whole run ---------------------------------------------------------------------------
    def run(self) -> list[ImageResult]:
        selected = self.options.selected
        logs = self.options.output_dir / "logs"
        try:
            logs.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise EnvironmentProblem(
                f"cannot create the output directory: {exc.strerror}", where=str(self.options.output_dir)
            ) from None
        self._place_wheels(selected)
        for name in selected:
            self.reporter.update(name, "queued")
        with ExitStack() as stack:
            if self.options.ca_cert is not None:
                self.ca_url = stack.enter_context(CertServer(self.options.ca_cert)).url
            self._schedule(selected)
        return [self.results[name] for name in selected]

    def _place_wheels(self, selected: tuple[str, ...]) -> None:
        needing = [self.index[n] for n in selected if self.index[n].needs_imagesmith_wheel]
        if not needing:
            return
        release = self.options.plan.imagesmith_release
        if release is None:
            built = self.options.imagesmith_wheel or wheel.build_wheel()
        else:
            built = wheel.for_release(
                release, push=self.options.push, given=self.options.imagesmith_wheel, warn=self._warn
            )
        for image in needing:
            wheel.place(built, image.context)

    @staticmethod
    def _warn(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    def _schedule(self, selected: tuple[str, ...]) -> None:
        parents = {image.name: image.parent for image in self.plan.images}
        plan = schedule.Schedule.of(parents, selected)
        futures: dict[Future[ImageResult], str] = {}
        with ThreadPoolExecutor(max_workers=self.options.jobs, thread_name_prefix="build") as pool:
            while not plan.finished:
                for name in plan.ready(self.options.jobs):
                    futures[pool.submit(self._guarded, name)] = name
                if not futures:
                    break
                finished, _ = wait(list(futures), return_when=FIRST_COMPLETED)
                for future in finished:
                    name = futures.pop(future)
                    result = future.result()
                    self.results[name] = result
                    for skipped in plan.finish(name, ok=result.ok):
                        self._skip(skipped, because=name)

    def _skip(self, name: str, *, because: str) -> None:
        image = self.index[name]
        self.results[name] = ImageResult(
            name=name,
            tag=image.tag,
            aliases=image.aliases,
            parent=image.parent,
            base_ref=None,
            status=SKIPPED,
            seconds=0.0,
            log_path=self.options.output_dir / "logs" / f"{name}.log",
            skipped_because=because,
        )
        self.reporter.update(name, SKIPPED, f"because {because} failed")

    def _guarded(self, name: str) -> ImageResult:
        """One image; any unexpected error becomes that image's failure instead of stopping the run."""
        log = _ImageLog(self.options.output_dir / "logs" / f"{name}.log")
        started = time.monotonic()
        try:
            result = self._one(self.index[name], log, started)
        except Exception as exc:  # the run must go on for the other images
            log(f"ERROR: {type(exc).__name__}: {exc}")
            image = self.index[name]
            result = ImageResult(
                name=name,
                tag=image.tag,
                aliases=image.aliases,
                parent=image.parent,
                base_ref=None,
                status=FAILED,
                seconds=time.monotonic() - started,
                log_path=log.path,
                error=f"{type(exc).__name__}: {exc}",
                log_tail=tuple(log.tail),
            )
        finally:
            log.close()
        self.reporter.update(
            name, result.status, "" if result.ok else (result.failed_step or result.error or "")
        )
        return result

    # -- one image -------------------------------------------------------------------------------
    def _base(self, image: PlannedImage, log: _ImageLog) -> tuple[str, engine.ImageFacts | None, str | None]:
        """``(BASE_IMAGE value, its facts, error)``; an OS base missing locally is pulled once."""
        if image.base.kind == "image":
            parent = self.index[image.base.name]
            if self.options.parents_from_registry and parent.name not in self.selected:
                return self._parent_from_registry(parent, log)
            facts = engine.image_facts(self.client, parent.tag)
            if facts is None:
                return parent.tag, None, f"parent image {parent.tag} is not in the engine"
            return parent.tag, facts, None
        ref = self.options.base_ref(image.base.name, image.base.ref)
        if ref is None:
            return (
                "",
                None,
                f"no OS base ref for {image.base.name!r} (pass --base-image {image.base.name}=REF)",
            )
        facts = engine.image_facts(self.client, ref)
        if facts is None:
            from docker.errors import DockerException

            log(f"OS base {ref} is not in the engine; pulling it")
            try:
                self.client.images.pull(ref)
            except DockerException as exc:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                return (
                    ref,
                    None,
                    f"OS base {ref} is not in the engine and cannot be pulled ({first}); "
                    f"point --base-image {image.base.name}=REF at a local image or a mirror",
                )
            facts = engine.image_facts(self.client, ref)
        return ref, facts, None

    def _parent_from_registry(
        self, parent: PlannedImage, log: _ImageLog
    ) -> tuple[str, engine.ImageFacts | None, str | None]:
        """The parent as its registry has it, pulled by digest: never rebuilt here, never re-pushed."""
        remote = self._remote(parent.tag)
        if remote is None:
            return (
                parent.tag,
                None,
                f"parent {parent.tag} is not in the registry (its own build must push it first)",
            )
        ref, manifest = remote
        pinned = f"{ref.repository}@{manifest.digest}"
        facts = engine.image_facts(self.client, pinned)
        if facts is None:
            # Facts from the registry (its config blob): enough to hash the inputs, so an unchanged
            # child is recognised without pulling a multi-GB parent; ``_pull_parent`` fetches it to build.
            facts = engine.ImageFacts(
                id=manifest.config_digest,
                labels=self._registry(ref).labels(ref, manifest),
                size=0,
                layers=(),
                repo_digests=(),
            )
        log(f"parent {parent.tag} from the registry: {pinned} (image {manifest.config_digest})")
        return pinned, facts, None

    def _pull_parent(
        self, base_value: str, base_facts: engine.ImageFacts, log: _ImageLog
    ) -> tuple[engine.ImageFacts | None, str | None]:
        """The parent in the local engine (pulled by digest when it came from the registry)."""
        if base_facts.repo_digests or "@" not in base_value:
            return base_facts, None
        ref = ImageRef.parse(base_value)
        error = engine.pull(self.client, ref.repository, ref.digest or "", log)
        if error is not None:
            return None, f"cannot pull parent {base_value}: {error}"
        return engine.image_facts(self.client, base_value), None

    def _unchanged_in_registry(
        self, image: PlannedImage, digest: str, result: ImageResult, log: _ImageLog, started: float
    ) -> ImageResult | None:
        """The registry's copy when it holds the immutable tag built from these very inputs, else None."""
        remote = self._remote(image.tag)
        if remote is None:
            return None
        ref, manifest = remote
        labels = self._registry(ref).labels(ref, manifest)
        if labels.get(INPUT_HASH) == digest:
            log(f"{image.tag} is in the registry as {manifest.digest} with this input hash: not rebuilt")
            return replace(
                result,
                status=UNCHANGED,
                image_id=manifest.config_digest,
                compressed_size=manifest.compressed_size,
                labels=labels,
                repo_digests=(f"{ref.repository}@{manifest.digest}",),
                seconds=time.monotonic() - started,
            )
        # Different inputs under the same immutable tag: build and test anyway (the image is there to
        # compare), and let the push guard refuse, naming both digests.
        log(
            f"{image.tag} is in the registry as {manifest.digest} built from other inputs "
            f"({labels.get(INPUT_HASH, 'unknown')}); building, but the push will be refused"
        )
        return None

    def _push_guard(self, ref_text: str, image_id: str) -> tuple[bool, str | None]:
        """``(push it, refusal)``: an immutable tag is pushed only when absent or already this image."""
        remote = self._remote(ref_text)
        if remote is None:
            return True, None
        manifest = remote[1]
        if manifest.config_digest == image_id:
            return False, None
        return False, (
            f"refusing to push {ref_text}: the registry has it as {manifest.digest} (image "
            f"{manifest.config_digest}), this build is image {image_id}; an immutable tag never moves"
        )

    def _framework(self, image: PlannedImage) -> Framework | None:
        for candidate in (image, *self.plan.ancestors(image.name)):
            if candidate.framework is not None:
                return candidate.framework
        return None

    def _one(self, image: PlannedImage, log: _ImageLog, started: float) -> ImageResult:
        def report(state: str, detail: str = "") -> None:
            self.reporter.update(image.name, state, detail)

        result = ImageResult(
            name=image.name,
            tag=image.tag,
            aliases=image.aliases,
            parent=image.parent,
            base_ref=None,
            status=FAILED,
            seconds=0.0,
            log_path=log.path,
        )

        def failed(error: str, step: str | None = None) -> ImageResult:
            log(f"FAILED: {error}")
            return _failure(result, error, step, started, log)

        report("resolving", "")
        base_value, base_facts, error = self._base(image, log)
        result = replace(result, base_ref=base_value)
        if error is not None or base_facts is None:
            return failed(error or f"base {base_value} not found")
        build_args = {"BASE_IMAGE": base_value}
        if self.options.pip_index_url:
            build_args["PIP_INDEX_URL"] = self.options.pip_index_url
        if self.ca_url:
            build_args["CA_CERT_URL"] = self.ca_url
        planned_labels = image.label_dict
        digest = inputs.input_hash(
            dockerfile=image.dockerfile,
            context=image.context,
            parent_id=base_facts.id,
            build_args=build_args,
            labels=planned_labels,
        )
        result = replace(result, parent_id=base_facts.id, input_hash=digest, parent_size=base_facts.size)
        log(f"input hash {digest} (base {base_value} = {base_facts.id})")
        if self.options.push:
            decided = self._unchanged_in_registry(image, digest, result, log, started)
            if decided is not None:
                return decided

        existing = engine.image_facts(self.client, image.tag)
        if not self.options.no_cache and existing is not None and existing.labels.get(INPUT_HASH) == digest:
            log(f"{image.tag} already carries this input hash: unchanged, not rebuilt")
            return self._finish(image, result, existing, base_facts, log, started, status=UNCHANGED)

        if self.options.parents_from_registry:
            pulled, error = self._pull_parent(base_value, base_facts, log)
            if error is not None or pulled is None:
                return failed(error or f"parent {base_value} vanished after the pull")
            base_facts = pulled
            result = replace(result, parent_size=base_facts.size)
        report("building", "")
        outcome = engine.build(
            self.client,
            context=image.context,
            dockerfile=image.dockerfile,
            build_args=build_args,
            labels={**planned_labels, INPUT_HASH: digest},
            nocache=self.options.no_cache,
            log=log,
            on_step=lambda k, n: report("building", f"step {k}/{n}"),
        )
        if outcome.image_id is None:
            return failed(outcome.error or "build failed", outcome.failed_step)
        built = engine.image_facts(self.client, outcome.image_id)
        if built is None:
            return failed(f"built image {outcome.image_id} vanished from the engine")
        return self._finish(image, result, built, base_facts, log, started, status=BUILT)

    def _finish(
        self,
        image: PlannedImage,
        result: ImageResult,
        facts: engine.ImageFacts,
        base_facts: engine.ImageFacts,
        log: _ImageLog,
        started: float,
        *,
        status: str,
    ) -> ImageResult:
        expects = self._expectations(image, base_facts)
        cached = _load_facts(facts.id) if status == UNCHANGED else None
        if cached is not None and not (cached.get("tests_ok") and cached.get("expectations") == expects):
            cached = None  # the plan now promises something else (or it failed): test again
        # A push reports the compressed sizes exactly, for free.
        measure = self.options.measure_sizes and not self.options.push
        compressed: int | None
        if cached is not None:
            tests = tuple(smoke.TestResult(**t) for t in cached["tests"])
            packages = tuple(Package(**p) for p in cached["packages"])
            stored = cached.get("compressed_size")
            compressed = int(stored) if stored is not None else None
            if compressed is None and measure:
                compressed = sizes.compressed_size(
                    facts.layers, lambda: engine.save_stream(self.client, facts.id), self.layer_cache
                )
            for test in tests:
                log(f"test {test.name}: {'ok' if test.ok else 'FAILED'} (cached) {test.detail}")
        else:
            self.reporter.update(image.name, "testing", "")
            tests = self._smoke(image, facts, base_facts, log)
            packages = self._inventory(facts.id, log)
            compressed = None
            if measure:
                self.reporter.update(image.name, "measuring", "")
                compressed = sizes.compressed_size(
                    facts.layers, lambda: engine.save_stream(self.client, facts.id), self.layer_cache
                )
            _store_facts(
                facts.id,
                {
                    "tests": [asdict(t) for t in tests],
                    "tests_ok": all(t.ok for t in tests),
                    "expectations": expects,
                    "packages": [asdict(p) for p in packages],
                    "compressed_size": compressed,
                },
            )
        result = replace(
            result,
            image_id=facts.id,
            size=facts.size,
            compressed_size=compressed,
            labels=facts.labels,
            tests=tests,
            tests_cached=cached is not None,
            packages=packages,
            sbom=self._sbom(image.name, facts, log),
        )
        broken = [t for t in tests if not t.ok]
        if broken:
            log(f"FAILED: smoke test {broken[0].name}: {broken[0].detail}")
            return _failure(
                result,
                f"smoke test {broken[0].name} failed: {broken[0].detail}",
                f"smoke test {broken[0].name}",
                started,
                log,
            )
        engine.tag(self.client, facts.id, (image.tag, *image.aliases))
        log(f"tagged {facts.id} as {', '.join((image.tag, *image.aliases))}")
        pushed: list[str] = []
        if self.options.push:
            self.reporter.update(image.name, "pushing", "")
            for ref in (image.tag, *image.aliases):
                error: str | None = None
                if ref == image.tag:  # aliases roll; the immutable tag never moves
                    wanted, error = self._push_guard(ref, facts.id)
                    if not wanted and error is None:
                        log(f"{ref} is already in the registry as this image: not pushed again")
                        continue
                if error is None:
                    error = engine.push(self.client, ref, log)
                if error is not None:
                    return _failure(result, f"push of {ref} failed: {error}", f"push {ref}", started, log)
                pushed.append(ref)
            remote = self._remote(image.tag)
            if remote is not None:
                ref_parsed, manifest = remote
                result = replace(
                    result,
                    repo_digests=(f"{ref_parsed.repository}@{manifest.digest}",),
                    compressed_size=manifest.compressed_size,
                )
        return replace(result, status=status, pushed=tuple(pushed), seconds=time.monotonic() - started)

    def _expectations(self, image: PlannedImage, base_facts: engine.ImageFacts) -> str:
        """What the smoke tests check, so cached results are reused only for the same promises."""
        framework = self._framework(image)
        return json.dumps(
            {
                "tests": self.plan.tests_for(image.name),
                "cuda_runtime": image.cuda_runtime,
                "framework": asdict(framework) if framework else None,
                "labels": image.label_dict,
                "inherited": base_facts.labels,
            },
            sort_keys=True,
        )

    def _smoke(
        self,
        image: PlannedImage,
        facts: engine.ImageFacts,
        base_facts: engine.ImageFacts,
        log: _ImageLog,
    ) -> tuple[smoke.TestResult, ...]:
        results: list[smoke.TestResult] = []
        framework = self._framework(image)
        for test in self.plan.tests_for(image.name):
            results.append(self._one_test(test, image, framework, facts, base_facts, log))
            log(f"test {results[-1].name}: {'ok' if results[-1].ok else 'FAILED'}: {results[-1].detail}")
        return tuple(results)

    def _one_test(
        self,
        test: str,
        image: PlannedImage,
        framework: Framework | None,
        facts: engine.ImageFacts,
        base_facts: engine.ImageFacts,
        log: _ImageLog,
    ) -> smoke.TestResult:
        """Run one declared smoke test in a throwaway container and judge its output (pure, in smoke)."""
        if test == "labels":
            return smoke.check_labels(facts.labels, image.label_dict, base_facts.labels)
        if test == "doctor":
            run = self._run_logged(facts.id, smoke.DOCTOR_COMMAND, log)
            cudnn = ImageLabels.from_labels(image.label_dict).cudnn
            return smoke.check_doctor(run.exit_code, run.stdout, run.stderr, image.cuda_runtime, cudnn)
        if test == "cuda-duplicates":
            run = self._run_logged(facts.id, smoke.DUPLICATES_COMMAND, log, show=False)
            return smoke.check_duplicates(run.exit_code, run.stdout, run.stderr)
        if test in ("nvcc-compile", "torch-extension"):
            command = smoke.NVCC_COMMAND if test == "nvcc-compile" else smoke.TORCH_EXTENSION_COMMAND
            run = self._run_logged(facts.id, command, log)
            return smoke.check_command(test, run.exit_code, run.stdout, run.stderr)
        # framework-import and framework-versions ask the nearest planned framework of the ancestry.
        if framework is None:
            return smoke.TestResult(name=test, ok=False, detail="declared, but no framework is planned")
        if test == "framework-import":
            run = self._run_logged(facts.id, smoke.framework_command(framework), log)
            return smoke.check_framework(framework, run.exit_code, run.stdout, run.stderr)
        if test == "framework-versions":
            run = self._run_logged(facts.id, smoke.versions_command(framework), log)
            return smoke.check_versions(framework, facts.labels, run.exit_code, run.stdout, run.stderr)
        return smoke.TestResult(name=test, ok=False, detail=f"unknown smoke test {test!r}")

    def _run_logged(
        self, image_id: str, command: list[str], log: _ImageLog, *, show: bool = True
    ) -> engine.RunOutcome:
        run = engine.run(self.client, image_id, command)
        shown = " ".join("<script>" if "\n" in arg else arg for arg in command)
        log(f"$ {shown}  (exit {run.exit_code})")
        if show or run.exit_code != 0:
            for line in (run.stdout + run.stderr).splitlines()[-20:]:
                log(f"  {line}")
        return run

    def _sbom(self, name: str, facts: engine.ImageFacts, log: _ImageLog) -> SbomFile | None:
        """The SBOM the image carries (its label names the path), copied next to the manifest."""
        inside = facts.labels.get(labels_contract.SBOM)
        if not inside:
            return None
        run = engine.run(self.client, facts.id, ["cat", inside])
        if run.exit_code != 0:
            log(
                f"the image's SBOM {inside} is unreadable (exit {run.exit_code}): {run.stderr.strip()[-300:]}"
            )
            return None
        target = self.options.output_dir / "sbom" / f"{name}.cdx.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(run.stdout, encoding="utf-8")
        count = len(sbom.read_packages(run.stdout))
        log(f"SBOM: {count} components ({inside} -> {target})")
        return SbomFile(
            path=target,
            inside=inside,
            components=count,
            sha256="sha256:" + hashlib.sha256(run.stdout.encode("utf-8")).hexdigest(),
        )

    def _inventory(self, image_id: str, log: _ImageLog) -> tuple[Package, ...]:
        run = engine.run(self.client, image_id, ["python3", "-c", smoke.INVENTORY_SCRIPT])
        if run.exit_code != 0:
            log(f"package inventory failed (exit {run.exit_code}): {run.stderr.strip()[-300:]}")
            return ()
        return tuple(
            Package(name=str(p["name"]), version=str(p.get("version", "")), size=int(str(p.get("size", 0))))
            for p in smoke.parse_inventory(run.stdout)
        )


def _failure(
    result: ImageResult, error: str, step: str | None, started: float, log: _ImageLog
) -> ImageResult:
    return replace(
        result,
        status=FAILED,
        error=error,
        failed_step=step,
        seconds=time.monotonic() - started,
        log_tail=tuple(log.tail),
    )


def build(options: BuildOptions, reporter: Reporter, client: Any | None = None) -> list[ImageResult]:
    """Build the selected images; returns one result per selected image, in plan order."""
    return Builder(options, client if client is not None else engine.connect(), reporter).run()
