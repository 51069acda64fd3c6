"""What the demo changes for the real node (warmstart.demo.workloads), without a cluster."""

from __future__ import annotations

import ast
import copy

from warmstart.demo import manifests as m
from warmstart.demo import workloads


def test_the_serving_deployment_gets_the_image_built_here_and_nothing_else() -> None:
    example = m.load(m.DEPLOYMENT_EXAMPLE)
    changed = workloads.serving_deployment(example)
    assert example == m.load(m.DEPLOYMENT_EXAMPLE)  # a copy: the example is untouched
    server = changed["spec"]["template"]["spec"]["containers"][0]
    assert server["image"] == workloads.TRAINER_IMAGE
    assert server["imagePullPolicy"] == "IfNotPresent"
    assert server["resources"]["requests"]["cpu"] == workloads.SERVER_CPU_REQUEST
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
    service = workloads.service(deployment)
    assert service["metadata"]["name"] == m.DEPLOYMENT
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": "http"}]
    assert workloads.service_url("reviews", "m") == (
        f"http://{m.DEPLOYMENT}.reviews.svc.cluster.local/v2/models/m/infer")


def test_the_chart_values_name_the_images_built_here() -> None:
    values = dict(v.split("=", 1) for v in workloads.helm_values())
    assert f"{values['image.repository']}:{values['image.tag']}" == workloads.OPERATOR_IMAGE
    assert values["image.pullPolicy"] == "IfNotPresent"
    assert values["operator.trainer.image"] == workloads.TRAINER_IMAGE


def test_the_prediction_pod_is_restricted_and_runs_valid_python() -> None:
    pod = workloads._client_pod("http://x/v2/models/m/infer", {"inputs": []})
    spec = pod["spec"]
    assert spec["automountServiceAccountToken"] is False
    assert spec["securityContext"]["runAsNonRoot"] is True
    container = spec["containers"][0]
    assert container["image"] == workloads.TRAINER_IMAGE
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    script = container["command"][-1]
    ast.parse(script)
    assert "'http://x/v2/models/m/infer'" in script
