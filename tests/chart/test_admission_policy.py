"""The chart's ValidatingAdmissionPolicy: a WarmStartJob (or a lineage's retraining template)
may name only the trainer images and service accounts the chart's values allow. Rendered
without a cluster, then enforced by the local cluster's real API server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.api.builders import make_lineage, make_wsj
from tests.chart.conftest import CHART, KUBE_VERSION, Helm, Manifest, find, one
from tests.conftest import LocalCluster, wait_for

DEFAULT_TRAINER = "ghcr.io/warmstart-dev/trainer:0.1.0"
VALUES = ("--set",
          "operator.trainer.allowedImages={registry.example.com/ml/,pinned.example.com/t:1}",
          "--set", "operator.trainer.allowedServiceAccounts={trainer}")


def policy_docs(helm: Helm, *args: str, namespace: str = "ops") -> list[Manifest]:
    docs = helm.template(*args, namespace=namespace, release=namespace)
    return [d for d in docs if d["kind"].startswith("ValidatingAdmissionPolicy")]


def test_policy_renders_the_values_and_the_operator_gets_the_same_lists(helm: Helm) -> None:
    docs = helm.template(*VALUES)
    policy = one(docs, "ValidatingAdmissionPolicy", "ws-warmstart-trainer")
    variables = {v["name"]: v["expression"] for v in policy["spec"]["variables"]}
    assert yaml.safe_load(variables["allowedImages"]) == [
        DEFAULT_TRAINER, "registry.example.com/ml/", "pinned.example.com/t:1"]
    assert yaml.safe_load(variables["allowedServiceAccounts"]) == ["default", "trainer"]
    binding = one(docs, "ValidatingAdmissionPolicyBinding", "ws-warmstart-trainer")
    assert binding["spec"]["validationActions"] == ["Deny"]
    assert "matchResources" not in binding["spec"]  # every namespace
    container = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["WARMSTART_ALLOWED_IMAGES"] == "registry.example.com/ml/,pinned.example.com/t:1"
    assert env["WARMSTART_ALLOWED_SERVICE_ACCOUNTS"] == "trainer"


def test_policy_binds_only_the_watched_namespaces_and_can_be_turned_off(helm: Helm) -> None:
    docs = helm.template("--set", "watchNamespaces={team-a,team-b}")
    binding = one(docs, "ValidatingAdmissionPolicyBinding")
    selector = binding["spec"]["matchResources"]["namespaceSelector"]["matchExpressions"][0]
    assert selector == {"key": "kubernetes.io/metadata.name", "operator": "In",
                        "values": ["team-a", "team-b"]}
    assert not find(helm.template("--set", "admissionPolicy.enabled=false"),
                    "ValidatingAdmissionPolicy")


def test_values_schema_refuses_a_malformed_allowlist(helm: Helm) -> None:
    result = helm.run("template", "ws", str(CHART), "--kube-version", KUBE_VERSION,
                      "--set", "operator.trainer.allowedServiceAccounts={Not Valid}", check=False)
    assert result.returncode != 0
    assert "allowedServiceAccounts" in result.stderr


@pytest.fixture
def policy(cluster: LocalCluster, helm: Helm, crds: None, namespace: str) -> Iterator[str]:
    """The chart's policy and binding, bound to this test's namespace only."""
    docs = policy_docs(helm, *VALUES, "--set", f"watchNamespaces={{{namespace}}}",
                       namespace=namespace)
    manifest = yaml.safe_dump_all(docs)
    cluster.kubectl("apply", "-f", "-", input=manifest)
    try:
        # The API server picks a new policy up asynchronously: wait until it refuses.
        probe = make_wsj("probe").set("spec.image", "evil.example.com/probe:1").obj()
        wait_for("the policy to take effect",
                 lambda: create(cluster, namespace, probe).returncode != 0, timeout=60)
        yield namespace
    finally:
        cluster.kubectl("delete", "-f", "-", "--ignore-not-found", input=manifest, check=False)


def create(cluster: LocalCluster, namespace: str, manifest: dict[str, Any]) -> Any:
    result = cluster.kubectl("create", "-n", namespace, "-f", "-",
                             input=yaml.safe_dump(manifest), check=False)
    if result.returncode == 0:  # keep the namespace free for the next case
        cluster.kubectl("delete", manifest["kind"], manifest["metadata"]["name"], "-n",
                        namespace, "--wait=false", check=False)
    return result


CASES: list[tuple[dict[str, Any], str | None]] = [
    (make_wsj("unset").obj(), None),
    (make_wsj("default-image").set("spec.image", DEFAULT_TRAINER).obj(), None),
    (make_wsj("under-prefix").set("spec.image", "registry.example.com/ml/trainer:2").obj(),
     None),
    (make_wsj("exact").set("spec.image", "pinned.example.com/t:1").obj(), None),
    (make_wsj("allowed-account").set("spec.serviceAccountName", "trainer").obj(), None),
    (make_wsj("default-account").set("spec.serviceAccountName", "default").obj(), None),
    (make_wsj("other-image").set("spec.image", "evil.example.com/miner:1").obj(),
     "spec.image: evil.example.com/miner:1 is not an allowed trainer image"),
    (make_wsj("beside-prefix").set("spec.image", "registry.example.com/mlx/t:1").obj(),
     "spec.image: registry.example.com/mlx/t:1 is not an allowed trainer image"),
    (make_wsj("other-tag").set("spec.image", "pinned.example.com/t:2").obj(),
     "spec.image: pinned.example.com/t:2 is not an allowed trainer image"),
    (make_wsj("other-account").set("spec.serviceAccountName", "builder").obj(),
     "spec.serviceAccountName: builder is not an allowed service account"),
    (make_lineage("template-image").schedule("@daily")
     .set("spec.retraining.template.image", "evil.example.com/miner:1").obj(),
     "spec.retraining.template.image: evil.example.com/miner:1 is not an allowed"),
    (make_lineage("template-account").schedule("@daily")
     .set("spec.retraining.template.serviceAccountName", "builder").obj(),
     "spec.retraining.template.serviceAccountName: builder is not an allowed"),
    (make_lineage("no-template").obj(), None),
]


def test_policy_on_the_real_api_server(cluster: LocalCluster, policy: str) -> None:
    # One namespace and one policy for every case: each costs the API server a moment to
    # pick the policy up.
    for manifest, refusal in CASES:
        name = manifest["metadata"]["name"]
        result = create(cluster, policy, manifest)
        if refusal is None:
            assert result.returncode == 0, (name, result.stderr)
        else:
            assert result.returncode != 0, f"{name} was accepted"
            assert refusal in result.stderr, (name, result.stderr)
            assert "operator.trainer.allowed" in result.stderr, (name, result.stderr)


def test_an_update_cannot_swap_the_image_in(cluster: LocalCluster, policy: str) -> None:
    body = yaml.safe_dump(make_wsj("later").obj())
    cluster.kubectl("create", "-n", policy, "-f", "-", input=body)
    result = cluster.kubectl("patch", "wsj", "later", "-n", policy, "--type=merge", "-p",
                             '{"spec": {"image": "evil.example.com/miner:1"}}', check=False)
    assert result.returncode != 0
    assert "spec.image: evil.example.com/miner:1 is not an allowed" in result.stderr
