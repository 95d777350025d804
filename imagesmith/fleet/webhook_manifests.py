"""`imagesmith webhook manifests`: everything the admission webhook needs in a cluster, as one multi-document YAML.

Namespace (optional), ServiceAccount, ClusterRole (get/list/watch nodes: the server watches them) and its
binding, the Deployment running ``imagesmith webhook serve --in-cluster`` (TLS from a Secret, probes on
``/healthz``/``/readyz``, non-root, read-only root filesystem, resources), the Service (443 -> 8443), and the
ValidatingWebhookConfiguration (admission.k8s.io v1 only, no side effects, the failure policy, a timeout, a
namespace selector that leaves out the webhook's own namespace and kube-system, an object selector that lets
``imagesmith.io/admission: skip`` opt out, rules for pods and the pod templates of workload controllers).
The documents are plain data, validated in the tests against the vendored Kubernetes schemas.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from imagesmith import __version__
from imagesmith.errors import UsageError
from imagesmith.fleet.webhook import FAILURE_POLICIES, MODES, PATH

NAME = "imagesmith-webhook"
WEBHOOK_NAME = "gpu-images.imagesmith.io"
TLS_SECRET = "imagesmith-webhook-tls"
DEFAULT_NAMESPACE = "imagesmith-system"
DEFAULT_IMAGE = f"ghcr.io/imagesmith/imagesmith:{__version__}"
OPT_OUT_LABEL = "imagesmith.io/admission"
PORT = 8443
TLS_DIR = "/etc/imagesmith/tls"
CACHE_DIR = "/var/cache/imagesmith"
RULES = (
    ("", ("pods",)),
    ("apps", ("deployments", "statefulsets", "daemonsets")),
    ("batch", ("jobs", "cronjobs")),
)


def deadline_for(timeout_seconds: int) -> float:
    """The server's own deadline: a second (or half the time) under the API server's ``timeoutSeconds``."""
    return float(timeout_seconds - 1) if timeout_seconds > 2 else timeout_seconds / 2


def ca_bundle(path: str) -> str:
    """The base64 of a PEM CA bundle file, as ``clientConfig.caBundle`` wants it."""
    try:
        pem = Path(path).read_bytes()
    except FileNotFoundError:
        raise UsageError("no such file", where=f"--ca-bundle {path}") from None
    except OSError as exc:
        raise UsageError(f"cannot read: {exc.strerror or exc}", where=f"--ca-bundle {path}") from None
    if b"-----BEGIN CERTIFICATE-----" not in pem:
        raise UsageError(
            "not a PEM certificate bundle",
            where=f"--ca-bundle {path}",
            hint="the CA that signed the TLS Secret",
        )
    return base64.b64encode(pem).decode("ascii")


def documents(
    *,
    namespace: str = DEFAULT_NAMESPACE,
    image: str = DEFAULT_IMAGE,
    ca_bundle_b64: str | None = None,
    mode: str = "deny",
    failure_policy: str = "Fail",
    timeout_seconds: int = 5,
    create_namespace: bool = True,
    replicas: int = 2,
) -> list[dict[str, Any]]:
    if mode not in MODES:
        raise UsageError(f"unknown mode {mode!r} (deny or warn)", where="--mode")
    if failure_policy not in FAILURE_POLICIES:
        raise UsageError(
            f"unknown failure policy {failure_policy!r} (Fail or Ignore)", where="--failure-policy"
        )
    if not 1 <= timeout_seconds <= 30:
        raise UsageError(
            f"{timeout_seconds} is outside 1..30 (the API server's range)", where="--timeout-seconds"
        )
    if not namespace:
        raise UsageError("an empty namespace", where="--namespace")
    labels = {"app.kubernetes.io/name": NAME, "app.kubernetes.io/part-of": "imagesmith"}
    meta = {"name": NAME, "namespace": namespace, "labels": labels}
    out: list[dict[str, Any]] = []
    if create_namespace:
        out.append(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace, "labels": {**labels}}}
        )
    out.append({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": dict(meta)})
    out.append(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": NAME, "labels": labels},
            "rules": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "watch"]}],
        }
    )
    out.append(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": NAME, "labels": labels},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": NAME},
            "subjects": [{"kind": "ServiceAccount", "name": NAME, "namespace": namespace}],
        }
    )
    args = [
        "webhook",
        "serve",
        "--in-cluster",
        "--tls-cert",
        f"{TLS_DIR}/tls.crt",
        "--tls-key",
        f"{TLS_DIR}/tls.key",
        "--port",
        str(PORT),
        "--mode",
        mode,
        "--failure-policy",
        failure_policy,
        "--deadline",
        f"{deadline_for(timeout_seconds):g}",
    ]

    def probe(path: str, period: int) -> dict[str, Any]:
        return {
            "httpGet": {"path": path, "port": "https", "scheme": "HTTPS"},
            "periodSeconds": period,
            "timeoutSeconds": 2,
            "failureThreshold": 3,
        }

    out.append(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": dict(meta),
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app.kubernetes.io/name": NAME}},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "serviceAccountName": NAME,
                        "securityContext": {
                            "runAsNonRoot": True,
                            "runAsUser": 65532,
                            "runAsGroup": 65532,
                            "seccompProfile": {"type": "RuntimeDefault"},
                        },
                        "containers": [
                            {
                                "name": "webhook",
                                "image": image,
                                "imagePullPolicy": "IfNotPresent",
                                "command": ["imagesmith"],
                                "args": args,
                                "ports": [{"name": "https", "containerPort": PORT, "protocol": "TCP"}],
                                "env": [{"name": "XDG_CACHE_HOME", "value": CACHE_DIR}],
                                "readinessProbe": probe("/readyz", 5),
                                "livenessProbe": probe("/healthz", 10),
                                "resources": {
                                    "requests": {"cpu": "100m", "memory": "192Mi"},
                                    "limits": {"memory": "512Mi"},
                                },
                                "securityContext": {
                                    "allowPrivilegeEscalation": False,
                                    "readOnlyRootFilesystem": True,
                                    "capabilities": {"drop": ["ALL"]},
                                },
                                "volumeMounts": [
                                    {"name": "tls", "mountPath": TLS_DIR, "readOnly": True},
                                    {"name": "cache", "mountPath": CACHE_DIR},
                                ],
                            }
                        ],
                        "volumes": [
                            {"name": "tls", "secret": {"secretName": TLS_SECRET}},
                            {"name": "cache", "emptyDir": {"sizeLimit": "256Mi"}},
                        ],
                    },
                },
            },
        }
    )
    out.append(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": dict(meta),
            "spec": {
                "selector": {"app.kubernetes.io/name": NAME},
                "ports": [{"name": "https", "port": 443, "targetPort": "https", "protocol": "TCP"}],
            },
        }
    )
    client: dict[str, Any] = {"service": {"namespace": namespace, "name": NAME, "path": PATH, "port": 443}}
    if ca_bundle_b64:
        client["caBundle"] = ca_bundle_b64
    excluded = list(dict.fromkeys([namespace, "kube-system"]))
    out.append(
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": NAME, "labels": labels},
            "webhooks": [
                {
                    "name": WEBHOOK_NAME,
                    "admissionReviewVersions": ["v1"],
                    "sideEffects": "None",
                    "failurePolicy": failure_policy,
                    "matchPolicy": "Equivalent",
                    "timeoutSeconds": timeout_seconds,
                    "namespaceSelector": {
                        "matchExpressions": [
                            {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": excluded}
                        ]
                    },
                    "objectSelector": {
                        "matchExpressions": [{"key": OPT_OUT_LABEL, "operator": "NotIn", "values": ["skip"]}]
                    },
                    "rules": [
                        {
                            "apiGroups": [group],
                            "apiVersions": ["v1"],
                            "resources": list(resources),
                            "operations": ["CREATE", "UPDATE"],
                            "scope": "Namespaced",
                        }
                        for group, resources in RULES
                    ],
                    "clientConfig": client,
                }
            ],
        }
    )
    return out


def render(docs: list[dict[str, Any]], *, has_ca_bundle: bool, namespace: str) -> str:
    """The documents as one YAML stream, with a header saying what must exist before applying it."""
    import yaml

    header = [
        "# imagesmith admission webhook (imagesmith webhook manifests)",
        f"# Needs a TLS Secret {namespace}/{TLS_SECRET} (tls.crt, tls.key) for {NAME}.{namespace}.svc,",
        "# e.g. kubectl -n NS create secret tls imagesmith-webhook-tls --cert server.crt --key server.key",
    ]
    if not has_ca_bundle:
        header.append(
            "# No --ca-bundle given: set webhooks[0].clientConfig.caBundle (base64 PEM of the signing CA)."
        )
    header.append("# Apply the ValidatingWebhookConfiguration last, once the Deployment is ready.")

    class _NoAliases(yaml.SafeDumper):
        def ignore_aliases(self, data: Any) -> bool:
            return True  # shared label maps are written out in full, not as &id001 anchors

    body = yaml.dump_all(
        docs, Dumper=_NoAliases, sort_keys=False, default_flow_style=False, explicit_start=True
    )
    return "\n".join(header) + "\n" + body
