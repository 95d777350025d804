"""The remote dev environment of a generated project (issue 15 item 3): real copier renders from a clone of this
template repository; the StatefulSet and Service against the vendored Kubernetes 1.33 schemas, sky.yaml against
SkyPilot's task schema, devcontainer.json's host requirements; `remote.up` gated, printed, and applied through a
stand-in kubectl."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from imagesmith.devenv import remote
from imagesmith.devenv.gate import GateRefused
from imagesmith.errors import EXIT_NEGATIVE
from tests.templates.templates_kit import GIT_ENV, answers, clone_template, copy, git, k8s_validator

HERE = Path(__file__).resolve().parent
NODES = HERE.parent / "fleet" / "fixtures" / "nodes.json"
CU130 = "ghcr.io/acme/ml/torch:2.13.0-py3.11-cu13.0-runtime-bookworm-r1"
DEV_FILES = ["deploy/dev/k8s/statefulset.yaml", "deploy/dev/k8s/service.yaml", "deploy/dev/sky.yaml"]


@pytest.fixture(scope="module")
def projects(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    with pytest.MonkeyPatch.context() as mp:
        for key, value in GIT_ENV.items():
            mp.setenv(key, value)
        root = tmp_path_factory.mktemp("devenv-remote")
        template = clone_template(root / "template")
        git(template, "tag", "v1")
        made = {
            kind: copy(template, root / kind, ref="v1", project_type=kind)
            for kind in ("library", "batch", "service")
        }
        made["service-gcp"] = copy(
            template, root / "service-gcp", ref="v1", project_type="service", cloud="gcp"
        )
        made["batch-cpu"] = copy(
            template,
            root / "batch-cpu",
            ref="v1",
            project_type="batch",
            accelerator="cpu",
            framework="none",
            cpus=2,
            memory_gb=8,
        )
        made["batch-cu130"] = copy(
            template, root / "batch-cu130", ref="v1", project_type="batch", base_image=CU130
        )
        yield made


def docs(project: Path, name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((project / name).read_text(encoding="utf-8")) if d]


def workspace(project: Path) -> dict[str, Any]:
    (found,) = docs(project, "deploy/dev/k8s/statefulset.yaml")
    return found


def production_pod(project: Path, kind: str) -> dict[str, Any]:
    if kind.startswith("batch"):
        spec: dict[str, Any] = docs(project, "deploy/k8s/job.yaml")[0]["spec"]["template"]["spec"]
    else:
        spec = docs(project, "deploy/k8s/deployment.yaml")[0]["spec"]["template"]["spec"]
    return spec


def errors(validator: Any, document: dict[str, Any]) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]


def test_deployable_types_get_the_dev_files_and_a_library_does_not(projects: dict[str, Path]) -> None:
    for kind in ("batch", "service", "service-gcp", "batch-cpu"):
        for name in DEV_FILES:
            assert (projects[kind] / name).is_file(), (kind, name)
    assert not (projects["library"] / "deploy").exists()


@pytest.mark.parametrize("kind", ["batch", "service", "service-gcp", "batch-cpu"])
def test_workspace_manifests_validate_against_the_kubernetes_schemas(
    projects: dict[str, Path], kind: str
) -> None:
    project = projects[kind]
    sts = workspace(project)
    assert errors(k8s_validator("statefulset-apps-v1.json"), sts) == []
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    pvc = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", **claim}
    assert errors(k8s_validator("persistentvolumeclaim-v1.json"), pvc) == []
    (svc,) = docs(project, "deploy/dev/k8s/service.yaml")
    assert errors(k8s_validator("service-v1.json"), svc) == []


def test_schema_validation_can_fail(projects: dict[str, Path]) -> None:
    sts = workspace(projects["batch"])
    sts["spec"]["template"]["spec"]["containers"][0]["resourcez"] = {}
    assert errors(k8s_validator("statefulset-apps-v1.json"), sts)


@pytest.mark.parametrize("kind", ["batch", "service", "service-gcp", "batch-cpu"])
def test_workspace_runs_the_dev_image_with_a_home_volume_on_the_production_placement(
    projects: dict[str, Path], kind: str
) -> None:
    project = projects[kind]
    recorded = answers(project)
    sts = workspace(project)
    pod = sts["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    slug = recorded["project_slug"]
    assert container["image"] == f"{recorded['image_registry']}/{slug}-dev:0.1.0" == remote.dev_image(project)
    assert container["command"] == ["jupyter", "lab"]
    assert {"name": "home", "mountPath": "/home/app"} in container["volumeMounts"]
    assert sts["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "home"
    assert sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "50Gi"
    assert sts["spec"]["persistentVolumeClaimRetentionPolicy"] == {
        "whenDeleted": "Retain",
        "whenScaled": "Retain",
    }
    assert pod["securityContext"]["runAsUser"] == 1000 and pod["securityContext"]["fsGroup"] == 1000
    # Node placement, requests and GPU affinity are the production pod's, which the template tests hold to what
    # the picked node offers pods and to the fleet's verdicts.
    prod = production_pod(project, kind)
    assert pod.get("nodeSelector") == prod.get("nodeSelector")
    assert pod["nodeSelector"]["node.kubernetes.io/instance-type"]
    assert pod.get("affinity") == prod.get("affinity")
    assert pod.get("tolerations") == prod.get("tolerations")
    assert container["resources"] == prod["containers"][0]["resources"]
    if recorded["accelerator"] == "gpu":
        assert container["resources"]["limits"]["nvidia.com/gpu"] == str(recorded["gpus"])
        assert pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    else:
        assert "nvidia.com/gpu" not in container["resources"]["limits"]
        assert "affinity" not in pod and "tolerations" not in pod


def test_requests_fit_what_the_picked_node_offers_pods(projects: dict[str, Path]) -> None:
    from imagesmith.picker import catalog
    from imagesmith.picker.allocatable import DEFAULT_HEADROOM, offer, parse_headroom

    headroom = parse_headroom(DEFAULT_HEADROOM)
    for kind in ("batch", "service-gcp", "batch-cpu"):
        project = projects[kind]
        pod = workspace(project)["spec"]["template"]["spec"]
        itype = pod["nodeSelector"]["node.kubernetes.io/instance-type"]
        requests = pod["containers"][0]["resources"]["requests"]
        rows = [
            r
            for r in catalog.load().rows
            if r.instance_type == itype and r.cloud == answers(project)["cloud"]
        ]
        assert rows
        for row in rows:
            node = offer(row, headroom)
            assert node is not None
            assert node.cpus >= float(requests["cpu"])
            assert node.memory_gib >= float(requests["memory"].removesuffix("Gi"))


def test_the_jupyter_service_selects_only_the_workspace(projects: dict[str, Path]) -> None:
    project = projects["service"]
    (svc,) = docs(project, "deploy/dev/k8s/service.yaml")
    assert svc["spec"]["type"] == "ClusterIP"
    assert svc["spec"]["ports"] == [
        {"name": "jupyter", "port": 8888, "targetPort": "jupyter", "protocol": "TCP"}
    ]
    dev_labels = workspace(project)["spec"]["template"]["metadata"]["labels"]
    assert all(dev_labels.get(k) == v for k, v in svc["spec"]["selector"].items())
    # The production Service must not send traffic to the dev pod.
    prod_svc = docs(project, "deploy/k8s/service.yaml")[0]
    assert not all(dev_labels.get(k) == v for k, v in prod_svc["spec"]["selector"].items())


def sky_validator() -> Any:
    from jsonschema import Draft202012Validator  # type: ignore[import-untyped,unused-ignore]

    schema = json.loads((HERE / "skypilot_task_schema.json").read_text(encoding="utf-8"))
    return Draft202012Validator(schema)


@pytest.mark.parametrize("kind", ["batch", "service", "service-gcp", "batch-cpu"])
def test_sky_task_validates_against_skypilots_fields_and_says_what_the_picker_chose(
    projects: dict[str, Path], kind: str
) -> None:
    from imagesmith.picker import catalog

    project = projects[kind]
    recorded = answers(project)
    task = docs(project, "deploy/dev/sky.yaml")[0]
    assert errors(sky_validator(), task) == []
    res = task["resources"]
    assert res["cloud"] == recorded["cloud"]
    assert res["image_id"] == f"docker:{remote.dev_image(project)}"
    assert res["use_spot"] is False
    assert res["autostop"] == {"idle_minutes": 60}
    itype = workspace(project)["spec"]["template"]["spec"]["nodeSelector"]["node.kubernetes.io/instance-type"]
    assert res["instance_type"] == itype
    rows = [r for r in catalog.load().rows if r.instance_type == itype and r.cloud == recorded["cloud"]]
    assert res["region"] in {r.region for r in rows}
    if recorded["accelerator"] == "gpu":
        row = rows[0]
        assert res["accelerators"] == f"{row.gpu_model}:{int(row.gpu_count)}"
    else:
        assert "accelerators" not in res
    assert "jupyter lab" in task["run"] and "--ip=127.0.0.1" in task["run"]
    assert task["workdir"] == "."


def test_sky_schema_can_fail(projects: dict[str, Path]) -> None:
    task = docs(projects["batch"], "deploy/dev/sky.yaml")[0]
    task["resources"]["use_spots"] = False
    assert errors(sky_validator(), task)
    task = docs(projects["batch"], "deploy/dev/sky.yaml")[0]
    task["resources"]["autostop"] = {"idle": 5}
    assert errors(sky_validator(), task)


@pytest.mark.parametrize("kind", ["library", "batch", "batch-cpu"])
def test_devcontainer_states_host_requirements_and_runs_the_doctor_on_start(
    projects: dict[str, Path], kind: str
) -> None:
    project = projects[kind]
    recorded = answers(project)
    config = json.loads((project / ".devcontainer/devcontainer.json").read_text(encoding="utf-8"))
    needs = config["hostRequirements"]
    assert config["postStartCommand"] == "imagesmith doctor"
    if recorded["accelerator"] == "gpu":
        assert needs["gpu"] is True
        assert config["runArgs"] == ["--gpus", "all"]
    else:
        assert "gpu" not in needs
    assert isinstance(needs["cpus"], int) and needs["cpus"] >= 1
    assert needs["memory"].endswith("gb")
    if kind != "library":
        assert needs["cpus"] == int(recorded["cpus"]) and needs["memory"] == f"{recorded['memory_gb']}gb"


# ---- remote.up: gated, then printed or applied -----------------------------------------------------------------


def fake_tool(folder: Path, name: str, script: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("#!/bin/sh\n" + script, encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def only_path(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    """PATH = the stand-in tools only (no real kubectl or sky; the stand-ins call system tools by path)."""
    folder.mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv("PATH", str(folder))
    monkeypatch.setenv("KUBECONFIG", str(folder / "no-kubeconfig"))


def test_up_without_the_tool_says_exactly_what_to_run(
    projects: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    only_path(monkeypatch, tmp_path / "bin")
    text = remote.up(projects["batch"], "k8s", apply=True)
    assert "kubectl is not installed; run from" in text
    assert "kubectl apply -f deploy/dev/k8s/" in text
    # What is judged is the dev stage's base: the devel twin of the project's (runtime) base_image.
    assert text.startswith("gate: pass: ghcr.io/acme/ml/torch:2.13.0-py3.11-cu12.6-devel-bookworm-r1 on aws")
    assert "kubectl port-forward svc/my-project-dev 8888:8888" in text
    text = remote.up(projects["batch"], "sky", apply=False)
    assert "not applied (no --apply); run from" in text
    assert "sky launch -c my-project-dev -i 60 deploy/dev/sky.yaml" in text
    # SkyPilot's AWS GPU image ships a driver the data does not know: unknown, said, never a pass.
    assert text.startswith("gate: unknown:") and "UNKNOWN_VERSION" in text


def test_the_cu130_dev_image_passes_on_the_current_eks_node_image(
    projects: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    only_path(monkeypatch, tmp_path / "bin")
    # EKS AL2023 NVIDIA v20260714 ships 580.159.03, above the CUDA 13.0 floor 580.65.06.
    text = remote.up(projects["batch-cu130"], "k8s", apply=False)
    assert "gate: pass:" in text and "eks-al2023-nvidia-v20260714, driver 580.159.03" in text


def test_dev_gate_judges_the_projects_own_files(projects: dict[str, Path]) -> None:
    from click.testing import CliRunner

    from imagesmith.devenv.gate_cli import gate_command
    from imagesmith.errors import EXIT_ENVIRONMENT

    project = projects["service-gcp"]
    itype = workspace(project)["spec"]["template"]["spec"]["nodeSelector"]["node.kubernetes.io/instance-type"]
    # SkyPilot's GCP GPU image (R580, any point release) runs the cu12.6 image: pass.
    done = CliRunner().invoke(
        gate_command, ["--project", str(project), "--target", "sky"], standalone_mode=False
    )
    assert done.exception is None, done.output
    assert done.output.startswith(
        f"pass: ghcr.io/acme/ml/torch:2.13.0-py3.11-cu12.6-devel-bookworm-r1 on gcp {itype}"
    )
    # GKE's managed driver is not in the data: unknown, exit 3, never a pass.
    done = CliRunner().invoke(
        gate_command, ["--project", str(project), "--target", "k8s"], standalone_mode=False
    )
    assert getattr(done.exception, "exit_code", None) == EXIT_ENVIRONMENT
    assert done.output.startswith("unknown:") and "gke-default" in done.output


STAND_IN_KUBECTL = """
echo "$@" >> "{log}"
case "$1 $2" in
  "config current-context") echo kind-dev ;;
  "get nodes") /bin/cat "{nodes}" ;;
  "apply -f") echo "statefulset.apps/my-project-dev created"; echo "service/my-project-dev created" ;;
  *) echo "unexpected: $@" >&2; exit 9 ;;
esac
"""


def cluster_whose_535_pool_is(path: Path, instance_type: str) -> Path:
    """The recorded cluster, its A100/535 pool relabelled as the instance type the project selects."""
    data = json.loads(NODES.read_text(encoding="utf-8"))
    for node in data["items"]:
        if node["metadata"]["labels"].get("eks.amazonaws.com/nodegroup") == "a100-535":
            node["metadata"]["labels"]["node.kubernetes.io/instance-type"] = instance_type
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_up_applies_through_kubectl_after_judging_the_clusters_pool(
    projects: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir, log = tmp_path / "bin", tmp_path / "kubectl.log"
    itype = workspace(projects["batch"])["spec"]["template"]["spec"]["nodeSelector"][
        "node.kubernetes.io/instance-type"
    ]
    nodes = cluster_whose_535_pool_is(tmp_path / "nodes.json", itype)
    fake_tool(bin_dir, "kubectl", STAND_IN_KUBECTL.format(log=log, nodes=nodes))
    only_path(monkeypatch, bin_dir)

    # cu12.6 on the 535 pool: runs, so it is applied.
    text = remote.up(projects["batch"], "k8s", apply=True)
    assert f"node pool -l node.kubernetes.io/instance-type={itype} (2 node(s))" in text
    assert "applied (context kind-dev): kubectl apply -f deploy/dev/k8s/" in text
    assert "statefulset.apps/my-project-dev created" in text
    assert "apply -f deploy/dev/k8s/" in log.read_text(encoding="utf-8")

    # cu13.0 on the same pool: refused before anything is applied, one line, the codes and a fix.
    log.write_text("", encoding="utf-8")
    with pytest.raises(GateRefused) as caught:
        remote.up(projects["batch-cu130"], "k8s", apply=True)
    line = caught.value.one_line()
    assert caught.value.exit_code == EXIT_NEGATIVE
    assert "\n" not in line and "[DRIVER_TOO_OLD" in line
    fixed = "ghcr.io/acme/ml/torch:2.13.0-py3.11-cu12.6"
    assert f"fix: build the dev image on the curated image {fixed}-devel-bookworm" in line
    assert f"-d base_image={fixed}-runtime-bookworm" in line
    assert "apply" not in log.read_text(encoding="utf-8")


def test_the_gate_reads_the_cluster_through_the_real_kubectl(
    projects: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real kubectl, pointed by its kubeconfig at the local HTTPS server replaying the recorded API (discovery,
    paginated NodeList): the gate judges the pool of the cluster kubectl lists, and a refusal stops before kubectl
    is asked to apply anything."""
    import os
    import shutil

    from tests.fleet.k8s_replay import start_replay

    if shutil.which("kubectl") is None:
        reason = "kubectl is not installed here"
        if os.environ.get("CI"):
            pytest.fail(f"CI is set, so this test must run: {reason}")
        pytest.skip(reason)
    itype = workspace(projects["batch-cu130"])["spec"]["template"]["spec"]["nodeSelector"][
        "node.kubernetes.io/instance-type"
    ]
    with start_replay(tmp_path / "api") as replay:
        for node in list(replay.nodes.values()):
            if node["metadata"]["labels"].get("eks.amazonaws.com/nodegroup") == "a100-535":
                node["metadata"]["labels"]["node.kubernetes.io/instance-type"] = itype
                replay.put_node(node)
        monkeypatch.setenv("KUBECONFIG", str(replay.kubeconfig))
        with pytest.raises(GateRefused) as caught:
            remote.up(projects["batch-cu130"], "k8s", apply=True)
        line = caught.value.one_line()
        # The pool kubectl listed (two A100 nodes on 535, across the replay's two pages) is what was judged.
        assert f"node pool -l node.kubernetes.io/instance-type={itype} (2 node(s))" in line, line
        assert "[DRIVER_TOO_OLD" in line
        listed = replay.list_requests("/api/v1/nodes")
        assert len(listed) == 2 and listed[1].get("continue"), listed  # kubectl followed the continue token
        # Only reads reached the server: nothing was applied.
        assert replay.writes == []
        assert {path for path, _ in replay.requests} <= {
            "/version",
            "/api",
            "/apis",
            "/api/v1",
            "/api/v1/nodes",
        }


def test_up_refuses_an_unknown_target(projects: dict[str, Path]) -> None:
    from imagesmith.errors import UsageError

    with pytest.raises(UsageError, match="unknown target 'local'"):
        remote.up(projects["batch"], "local", apply=False)
    with pytest.raises(UsageError, match="no dev workspace manifests"):
        remote.up(projects["library"], "k8s", apply=False)
