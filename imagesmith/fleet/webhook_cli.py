"""`imagesmith webhook serve|manifests`: thin translators onto the admission webhook (``fleet/webhook.py``)."""

from __future__ import annotations

import click

from imagesmith.fleet.webhook import DEADLINE_S, FAILURE_POLICIES, MAX_BODY, MODES
from imagesmith.fleet.webhook_manifests import DEFAULT_IMAGE, DEFAULT_NAMESPACE

_MODE = click.option(
    "--mode",
    type=click.Choice(MODES),
    default="deny",
    show_default=True,
    help="deny: refuse an image that runs on no node it may land on; warn: admit it with a warning.",
)
_FAILURE = click.option(
    "--failure-policy",
    type=click.Choice(FAILURE_POLICIES),
    default="Fail",
    show_default=True,
    help="When judging fails (an error, the deadline): Fail refuses, Ignore admits with a warning.",
)


@click.group("webhook")
def webhook() -> None:
    """A validating admission webhook: refuse pods whose GPU image runs on no node they may land on."""


@webhook.command("serve")
@click.option(
    "--tls-cert", required=True, type=click.Path(dir_okay=False), help="PEM server certificate (chain)."
)
@click.option("--tls-key", required=True, type=click.Path(dir_okay=False), help="PEM private key.")
@click.option("--port", type=click.IntRange(0, 65535), default=8443, show_default=True)
@click.option("--host", default="0.0.0.0", show_default=True, help="Address to listen on.")
@_MODE
@_FAILURE
@click.option(
    "--deadline",
    type=click.FloatRange(min=0.05),
    default=DEADLINE_S,
    show_default=True,
    help="Seconds to judge one review; keep it under the configuration's timeoutSeconds.",
)
@click.option("--max-body-bytes", type=click.IntRange(min=1), default=MAX_BODY, show_default=True)
@click.option(
    "--nodes",
    "nodes_file",
    type=click.Path(dir_okay=False),
    help="`kubectl get nodes -o json` output, read once.",
)
@click.option(
    "--kubeconfig",
    type=click.Path(dir_okay=False),
    help="Watch the API's nodes (default: $KUBECONFIG or ~/.kube/config).",
)
@click.option("--context", help="kubeconfig context.")
@click.option("--in-cluster", is_flag=True, help="Watch nodes with the pod's service account.")
@click.option(
    "--images",
    "images_file",
    type=click.Path(dir_okay=False),
    help="JSON {image: {labels, env}} instead of reading each image's labels from its registry.",
)
def serve_command(
    tls_cert: str,
    tls_key: str,
    port: int,
    host: str,
    mode: str,
    failure_policy: str,
    deadline: float,
    max_body_bytes: int,
    nodes_file: str | None,
    kubeconfig: str | None,
    context: str | None,
    in_cluster: bool,
    images_file: str | None,
) -> None:
    """Serve POST /validate (admission.k8s.io/v1) over HTTPS until SIGTERM."""
    from imagesmith.fleet import webhook as core

    core.serve(
        tls_cert=tls_cert,
        tls_key=tls_key,
        host=host,
        port=port,
        mode=mode,
        failure_policy=failure_policy,
        deadline_s=deadline,
        nodes_file=nodes_file,
        kubeconfig=kubeconfig,
        context=context,
        in_cluster=in_cluster,
        images_file=images_file,
        max_body=max_body_bytes,
    )


@webhook.command("manifests")
@click.option("--namespace", default=DEFAULT_NAMESPACE, show_default=True)
@click.option("--create-namespace/--no-create-namespace", default=True, show_default=True)
@click.option("--image", default=DEFAULT_IMAGE, show_default=True, help="An image with imagesmith installed.")
@click.option(
    "--ca-bundle", type=click.Path(dir_okay=False), help="PEM of the CA that signed the serving certificate."
)
@_MODE
@_FAILURE
@click.option(
    "--timeout-seconds", type=int, default=5, show_default=True, help="The API server's wait (1-30)."
)
@click.option("--replicas", type=click.IntRange(min=1), default=2, show_default=True)
def manifests_command(
    namespace: str,
    create_namespace: bool,
    image: str,
    ca_bundle: str | None,
    mode: str,
    failure_policy: str,
    timeout_seconds: int,
    replicas: int,
) -> None:
    """Print the webhook's manifests (RBAC, Deployment, Service, ValidatingWebhookConfiguration) as YAML."""
    from imagesmith.fleet import webhook_manifests as m

    docs = m.documents(
        namespace=namespace,
        image=image,
        ca_bundle_b64=m.ca_bundle(ca_bundle) if ca_bundle else None,
        mode=mode,
        failure_policy=failure_policy,
        timeout_seconds=timeout_seconds,
        create_namespace=create_namespace,
        replicas=replicas,
    )
    click.echo(m.render(docs, has_ca_bundle=ca_bundle is not None, namespace=namespace), nl=False)
