"""What the demo changes for the real node (warmstart.demo.realnode), without a cluster."""

from __future__ import annotations

import ast
import copy

from warmstart.demo import manifests as m
from warmstart.demo import realnode


def test_the_serving_deployment_gets_the_image_built_here_and_nothing_else() -> None:
    example = m.load(m.DEPLOYMENT_EXAMPLE)
    changed = realnode.serving_deployment(example)
    assert example == m.load(m.DEPLOYMENT_EXAMPLE)  # a copy: the example is untouched
    server = changed["spec"]["template"]["spec"]["containers"][0]
    assert server["image"] == realnode.TRAINER_IMAGE
    assert server["imagePullPolicy"] == "IfNotPresent"
    assert server["resources"]["requests"]["cpu"] == realnode.SERVER_CPU_REQUEST
    # Everything else (security context, probes, memory, env) is the example's.
    undone = copy.deepcopy(changed)
    original = example["spec"]["template"]["spec"]["containers"][0]
    undone_server = undone["spec"]["template"]["spec"]["containers"][0]
    undone_server["image"] = original["image"]
    undone_server["resources"]["requests"]["cpu"] = original["resources"]["requests"]["cpu"]
    del undone_server["imagePullPolicy"]
    assert undone == example


def test_the_service_selects_the_deployments_pods_on_its_http_port() -> None:
    deployment = m.load(m.DEPLOYMENT_EXAMPLE)
    service = realnode.service(deployment)
    assert service["metadata"]["name"] == m.DEPLOYMENT
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": "http"}]
    assert realnode.service_url("reviews", "m") == (
        f"http://{m.DEPLOYMENT}.reviews.svc.cluster.local/v2/models/m/infer")


def test_the_chart_values_name_the_images_built_here() -> None:
    values = dict(v.split("=", 1) for v in realnode.helm_values())
    assert f"{values['image.repository']}:{values['image.tag']}" == realnode.OPERATOR_IMAGE
    assert values["image.pullPolicy"] == "IfNotPresent"
    assert values["operator.trainer.image"] == realnode.TRAINER_IMAGE


def test_the_prediction_pod_is_restricted_and_runs_valid_python() -> None:
    pod = realnode._client_pod("http://x/v2/models/m/infer", {"inputs": []})
    spec = pod["spec"]
    assert spec["automountServiceAccountToken"] is False
    assert spec["securityContext"]["runAsNonRoot"] is True
    container = spec["containers"][0]
    assert container["image"] == realnode.TRAINER_IMAGE
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    script = container["command"][-1]
    ast.parse(script)
    assert "'http://x/v2/models/m/infer'" in script
