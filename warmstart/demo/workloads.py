"""What the demo's cluster runs: the images built here, and how a client reaches them.

The kubelet runs the images scripts/build-images made and pushed to the local registry
(pulled into the node's containerd at `warmstart-cluster up`, pullPolicy IfNotPresent), so
the chart gets the operator's image and the trainer's, and the example serving Deployment
gets the trainer image. Pods have their own network: the demo's prediction goes through
the serving Deployment's ClusterIP Service by its DNS name, from a short-lived pod of the
trainer image, as any client in the cluster would; pod logs come from `kubectl logs`.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

from warmstart.cli.kube import Kube, wait_until
from warmstart.demo import manifests as m
from warmstart.demo import predict as p
from warmstart.demo.errors import DemoError
from warmstart_localcluster.node import registry

REPOSITORY = "localhost/warmstart"
TRAINER_IMAGE = f"{REPOSITORY}/trainer:dev"
OPERATOR_IMAGE = f"{REPOSITORY}/operator:dev"
# The example asks for half a CPU per server pod; on this 2-core node a 1-CPU training
# and two server pods (old and new, during a rollout: maxSurge 1) must fit together.
SERVER_CPU_REQUEST = "250m"
PREDICT_POD = "reviews-predict"
SERVICE_PORT = 80
# A pod's start (the trainer image's Python) and a first answer on a busy 2-core machine.
PREDICT_TIMEOUT = 300
_ANSWER = "ANSWER "


def check_images() -> None:
    """The images the kubelet runs must have been built and pushed to the local registry."""
    missing = sorted(set(registry.PROJECT_IMAGES) - set(registry.pushed()))
    if missing:
        raise DemoError(f"{' and '.join(missing)} not in the local registry "
                        f"({registry.storage_dir()}): "
                        "run scripts/build-images first (about 20 minutes the first time; "
                        "a no-op once built)")


def helm_values() -> list[str]:
    """The chart's values for the images built here."""
    repository, tag = OPERATOR_IMAGE.rsplit(":", 1)
    return [f"image.repository={repository}", f"image.tag={tag}", "image.pullPolicy=IfNotPresent",
            f"operator.trainer.image={TRAINER_IMAGE}"]


def serving_deployment(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The example serving Deployment with the trainer image built here."""
    result = copy.deepcopy(dict(doc))
    for container in result["spec"]["template"]["spec"]["containers"]:
        container["image"] = TRAINER_IMAGE
        container["imagePullPolicy"] = "IfNotPresent"
        container.setdefault("resources", {}).setdefault("requests", {})["cpu"] = (
            SERVER_CPU_REQUEST)
    return result


def service(deployment: Mapping[str, Any]) -> dict[str, Any]:
    """The ClusterIP Service in front of the serving Deployment (what `kubectl expose`
    makes): port 80 to the server's `http` port."""
    name = deployment["metadata"]["name"]
    return {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
        "spec": {"selector": dict(deployment["spec"]["selector"]["matchLabels"]),
                 "ports": [{"name": "http", "port": SERVICE_PORT, "targetPort": "http"}]},
    }


def service_url(namespace: str, model: str) -> str:
    return (f"http://{m.DEPLOYMENT}.{namespace}.svc.cluster.local/v2/models/{model}/infer")


def _client_pod(url: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """A pod of the trainer image that posts ``body`` to ``url`` and prints the answer;
    restricted like the server (non-root, read-only root, no capabilities, no token)."""
    script = (
        "import json, sys, time, urllib.request\n"
        f"req = urllib.request.Request({url!r}, data={json.dumps(body)!r}.encode(),\n"
        "    headers={'Content-Type': 'application/json'})\n"
        "for attempt in range(30):\n"
        "    try:\n"
        "        with urllib.request.urlopen(req, timeout=60) as resp:\n"
        f"            print({_ANSWER!r} + resp.read().decode(), flush=True)\n"
        "        sys.exit(0)\n"
        "    except OSError as exc:\n"
        "        print('retrying:', exc, flush=True)\n"
        "        time.sleep(1)\n"
        "sys.exit(1)\n"
    )
    return script_pod(PREDICT_POD, script)


def script_pod(name: str, script: str, namespace: str | None = None) -> dict[str, Any]:
    """A pod of the trainer image that runs ``python -c script`` once, as restricted as the
    server (non-root, read-only root, no capabilities, no service-account token)."""
    metadata: dict[str, Any] = {"name": name, "labels": {"app": name}}
    if namespace:
        metadata["namespace"] = namespace
    return {
        "apiVersion": "v1", "kind": "Pod", "metadata": metadata,
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "securityContext": {"runAsNonRoot": True,
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "main", "image": TRAINER_IMAGE, "imagePullPolicy": "IfNotPresent",
                "command": ["python", "-c", script],
                "securityContext": {"readOnlyRootFilesystem": True,
                                    "allowPrivilegeEscalation": False,
                                    "capabilities": {"drop": ["ALL"]}},
            }],
        },
    }


def _phase(kube: Kube) -> str | None:
    phase = kube.kubectl("get", "pod", PREDICT_POD, "-n", kube.namespace, "--ignore-not-found",
                         "-o", "jsonpath={.status.phase}").strip()
    return phase if phase in ("Succeeded", "Failed") else None


def predict_via_service(kube: Kube, model: str, texts: tuple[str, ...] = p.SAMPLES,
                        ) -> tuple[str, list[p.Prediction]]:
    """A prediction through the Service's DNS name, from a pod in the namespace."""
    kube.kubectl("delete", "pod", PREDICT_POD, "-n", kube.namespace, "--ignore-not-found",
                 "--wait=true", timeout=120)
    kube.apply([_client_pod(service_url(kube.namespace, model), p.request_body(texts))])
    try:
        phase = wait_until(f"pod {PREDICT_POD} to get an answer", lambda: _phase(kube),
                           timeout=PREDICT_TIMEOUT, interval=1)
        said = kube.kubectl("logs", PREDICT_POD, "-n", kube.namespace)
    finally:
        kube.kubectl("delete", "pod", PREDICT_POD, "-n", kube.namespace, "--ignore-not-found",
                     "--wait=false")
    answers = [line for line in said.splitlines() if line.startswith(_ANSWER)]
    if phase != "Succeeded" or not answers:
        raise DemoError(f"pod {PREDICT_POD} got no answer from the Service ({phase}):\n"
                        f"{said.strip()[-2000:]}")
    try:
        body: dict[str, Any] = json.loads(answers[-1][len(_ANSWER):])
    except ValueError:
        raise DemoError(f"unexpected answer from the model server: {answers[-1][:300]}") from None
    return p.parse_response(texts, body)
