"""`imagesmith dev up --target k8s|sky`: the rendered remote dev environment, gated, then applied or printed.

A generated batch or service project holds ``deploy/dev/k8s/`` (a StatefulSet with a home volume and a ClusterIP
Service for JupyterLab) and ``deploy/dev/sky.yaml`` (a SkyPilot task), both on the node type the picker chose and
the project's dev image ``<image_registry>/<project_slug>-dev:<version>``. Before anything is applied the gate
(``imagesmith.devenv.gate``) holds the dev image's labels to the target: the node pool of the current kubectl
context when it can be read, else the picked instance and the driver its provider image ships. A refusal raises
``GateRefused`` (exit 1, one line: reason codes and the nearest fix); an unknown answer raises ``GateUnknown``
(exit 3) before an apply, and is reported next to the command otherwise.

The command runs only with ``apply=True`` and only when its tool is installed and configured (``kubectl`` with a
current context; ``sky`` on PATH); otherwise the answer says exactly what to run.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

from imagesmith.contract.labels import ImageLabels
from imagesmith.errors import EnvironmentProblem, UsageError

REMOTE_TARGETS = ("k8s", "sky")
K8S_DIR = Path("deploy") / "dev" / "k8s"
SKY_FILE = Path("deploy") / "dev" / "sky.yaml"
ANSWERS = ".copier-answers.yml"
TIMEOUT_S = 600.0


def _yaml(path: Path) -> Any:
    import yaml

    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError("no such file", where=str(path)) from None
    except yaml.YAMLError as exc:
        raise UsageError(f"not valid YAML: {str(exc).splitlines()[0]}", where=str(path)) from None


def answers(project_dir: Path) -> dict[str, Any]:
    """The project's recorded copier answers (``.copier-answers.yml``)."""
    data = _yaml(project_dir / ANSWERS)
    if not isinstance(data, dict):
        raise UsageError("not a copier answers file", where=str(project_dir / ANSWERS))
    return data


DEV_VERSION = "0.1.0"  # the templates' project version (their manifests tag the project image the same)


def dev_image_ref(registry: str, slug: str) -> str:
    """The one spelling of a project's dev image: ``<image_registry>/<project_slug>-dev:<version>`` (what `dev up`
    tags locally and deploy/dev/ pulls; templates/base/dev/macros.jinja writes the same, a test holds them)."""
    return f"{registry}/{slug}-dev:{DEV_VERSION}"


def dev_image(project_dir: Path, recorded: dict[str, Any] | None = None) -> str:
    """The project's dev image reference: ``<image_registry>/<project_slug>-dev:<version>``."""
    got = recorded if recorded is not None else answers(project_dir)
    return dev_image_ref(
        str(got.get("image_registry", "registry.example.com/ml")),
        str(got.get("project_slug", project_dir.name)),
    )


def curated_catalog(recorded: dict[str, Any]) -> Any:
    """The team's curated images the project was made from: its template's plan, else the embedded one."""
    from imagesmith.images import catalog

    src = recorded.get("_src_path")
    source = Path(str(src)) if src and Path(str(src)).is_dir() else None
    return catalog.for_template(source)


def image_labels(project_dir: Path, *, built: bool = False) -> tuple[str, ImageLabels]:
    """(what is judged, its labels). ``built``: the dev image's own labels, read from its registry without pulling
    (``imagesmith.registry.facts``). Otherwise those of the curated image the Dockerfile's ``dev`` stage builds on
    (the devel twin of the project's ``base_image``, ``FROM ${DEV_BASE_IMAGE} AS dev``; the ``base_image`` itself
    when the plan has no twin, ``FROM app AS dev``), as the template's ``base_images/plan.json`` describes it."""
    recorded = answers(project_dir)
    if built:
        from imagesmith.registry.facts import image_facts

        ref = dev_image(project_dir, recorded)
        return ref, image_facts(ref).promised
    from imagesmith.devenv.gate import labels_of

    base = str(recorded.get("base_image") or "")
    cat = curated_catalog(recorded)
    choice = cat.dev_base(base) or cat.known().get(base)
    if choice is None:
        raise UsageError(
            f"{base!r} is not a curated image of {cat.source}",
            where=f"{ANSWERS}: base_image",
            hint="judge the built dev image instead (--built), or copier update -d base_image=<curated tag>",
        )
    return choice.tag, labels_of(choice)


def _current_context() -> str | None:
    if shutil.which("kubectl") is None:
        return None
    try:
        done = subprocess.run(
            ["kubectl", "config", "current-context"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    context = done.stdout.strip()
    return context if done.returncode == 0 and context else None


def _workspace(project_dir: Path) -> dict[str, Any]:
    """The StatefulSet of deploy/dev/k8s/ (the first one found)."""
    import yaml

    folder = project_dir / K8S_DIR
    if not folder.is_dir():
        raise UsageError(
            "no dev workspace manifests",
            where=str(folder),
            hint="a batch or service project from a template with deploy/dev/ (copier update --trust --defaults)",
        )
    for path in sorted(folder.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if isinstance(doc, dict) and doc.get("kind") == "StatefulSet":
                return doc
    raise UsageError("no StatefulSet in the dev workspace manifests", where=str(folder))


def _instance_of_k8s(project_dir: Path) -> str:
    spec = _workspace(project_dir)["spec"]["template"]["spec"]
    return str((spec.get("nodeSelector") or {}).get("node.kubernetes.io/instance-type") or "")


def project_instance(project_dir: Path, target: str) -> tuple[str, str]:
    """(instance type, cloud) the project's rendered ``target`` files run on ("" when they name none)."""
    cloud = str(answers(project_dir).get("cloud") or "aws")
    if target == "k8s":
        return _instance_of_k8s(project_dir), cloud
    resources = _sky_task(project_dir).get("resources") or {}
    return str(resources.get("instance_type") or ""), str(resources.get("cloud") or cloud)


def _sky_task(project_dir: Path) -> dict[str, Any]:
    task = _yaml(project_dir / SKY_FILE)
    if not isinstance(task, dict):
        raise UsageError("not a SkyPilot task", where=str(project_dir / SKY_FILE))
    return task


def _cluster_nodes(context: str) -> str | None:
    """`kubectl get nodes -o json` of the current context, saved to a temporary file (None when unreadable)."""
    import tempfile

    try:
        done = subprocess.run(
            ["kubectl", "get", "nodes", "-o", "json"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    with tempfile.NamedTemporaryFile("w", suffix=".json", prefix=f"nodes-{context}-", delete=False) as handle:
        handle.write(done.stdout)
    return handle.name


def gate_for(project_dir: Path, target: str, *, context: str | None = None, built: bool = False) -> Any:
    """The gate's answer for the project's dev image on ``target`` (``GateAnswer``)."""
    from imagesmith.devenv import gate

    recorded = answers(project_dir)
    ref, labels = image_labels(project_dir, built=built)
    instance, cloud = project_instance(project_dir, target)
    if target == "k8s":
        nodes_file = _cluster_nodes(context) if context else None
        if nodes_file is not None and instance:
            selector = f"node.kubernetes.io/instance-type={instance}"
            try:
                pool = gate.pool_target(nodes_file, selector)
            except UsageError:
                pool = None  # no such node in the cluster (an autoscaler adds them): judge the instance
            finally:
                Path(nodes_file).unlink(missing_ok=True)
            if pool is not None:
                return gate.check(labels, pool, image=ref, curated=curated_catalog(recorded))
    if not instance:
        raise UsageError(
            "the rendered files name no instance type to judge",
            where=str(project_dir / (K8S_DIR if target == "k8s" else SKY_FILE)),
            hint="answer instance_type=auto (copier update --trust --defaults -d instance_type=auto)",
        )
    return gate.check(
        labels,
        gate.instance_target(instance, cloud, target=target),
        image=ref,
        curated=curated_catalog(recorded),
    )


def command(project_dir: Path, target: str) -> list[str]:
    """What starts the remote dev environment, run from the project's folder."""
    if target == "k8s":
        return ["kubectl", "apply", "-f", K8S_DIR.as_posix() + "/"]
    recorded = answers(project_dir)
    task = _sky_task(project_dir)
    idle = ((task.get("resources") or {}).get("autostop") or {}).get("idle_minutes") or recorded.get(
        "dev_idle_minutes", 60
    )
    return [
        "sky",
        "launch",
        "-c",
        str(task.get("name") or dev_image(project_dir)),
        "-i",
        str(idle),
        SKY_FILE.as_posix(),
    ]


def _then(project_dir: Path, target: str) -> str:
    slug = answers(project_dir).get("project_slug", project_dir.name)
    if target == "k8s":
        return f"then: kubectl port-forward svc/{slug}-dev 8888:8888 and open http://127.0.0.1:8888/lab (token: kubectl logs {slug}-dev-0)"
    return f"then: ssh -L 8888:localhost:8888 {slug}-dev and open http://127.0.0.1:8888/lab (token: sky logs {slug}-dev)"


def up(
    project_dir: Path, target: str, *, apply: bool, allow_unknown: bool = False, built: bool = False
) -> str:
    """Gate, then apply (``apply`` and the tool installed and configured) or say what to run. Returns the text to
    print; raises ``GateRefused``/``GateUnknown`` (one line) when the gate says no, ``EnvironmentProblem`` when the
    tool fails."""
    if target not in REMOTE_TARGETS:
        raise UsageError(f"unknown target {target!r} (one of {', '.join(REMOTE_TARGETS)})", where="--target")
    project_dir = Path(project_dir)
    context = _current_context() if target == "k8s" else None
    if target == "k8s":
        tool_ready = context is not None
        missing = (
            "kubectl is not installed"
            if shutil.which("kubectl") is None
            else "kubectl has no current context"
        )
    else:
        tool_ready = shutil.which("sky") is not None
        missing = "sky (SkyPilot) is not installed"
    applying = apply and tool_ready
    answer = gate_for(project_dir, target, context=context if applying else None, built=built)
    # A refusal always stops here; an unknown answer stops an apply (nothing is paid for on a guess).
    if answer.answer == "refuse" or (answer.answer == "unknown" and applying and not allow_unknown):
        answer.raise_unless_pass()
    argv = command(project_dir, target)
    shown = " ".join(argv)
    lines = [f"gate: {answer.one_line()} ({answer.seconds * 1000:.1f} ms)"]
    if not applying:
        why = "not applied (no --apply)" if not apply else missing
        lines.append(f"{why}; run from {project_dir}: {shown}")
        lines.append(_then(project_dir, target))
        return "\n".join(lines)
    run_argv = [*argv[:2], "-y", *argv[2:]] if target == "sky" else argv
    try:
        done = subprocess.run(
            run_argv, cwd=project_dir, capture_output=True, text=True, timeout=TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EnvironmentProblem(f"{shown}: {exc}") from None
    if done.returncode != 0:
        last = (done.stderr.strip() or done.stdout.strip() or "no output").splitlines()[-1]
        raise EnvironmentProblem(f"{shown} exited {done.returncode}: {last}")
    where = f" (context {context})" if context else ""
    lines.append(f"applied{where}: {shown}")
    lines += [line for line in done.stdout.strip().splitlines() if line][-10:]
    lines.append(_then(project_dir, target))
    return "\n".join(lines)
