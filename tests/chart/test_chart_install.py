"""The chart on the local control plane: its manifests pass the API server's validation, and
the operator it installs (the chart's pod, the chart's ServiceAccount token, the chart's
Role) runs the warm-start story; without one of its rules it says so instead of stalling."""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from kubernetes import client

from tests.chart.conftest import CHART, Helm
from tests.conftest import LocalCluster, wait_for
from tests.operator.kit import (
    Api,
    TinyLineage,
    lineage_manifest,
    s3_secret,
    served_lineage,
    wsj_manifest,
)
from warmstart.demo import workloads as demo_workloads
from warmstart_localcluster.ports import free_ports

KOPF_FINALIZER = "kopf.zalando.org/KopfFinalizerMarker"


@pytest.mark.parametrize("mode", ["cluster-wide", "watch-namespaces"])
def test_rendered_manifests_pass_server_dry_run(cluster: LocalCluster, helm: Helm,
                                                namespace: str, mode: str) -> None:
    values = ["--set", f"watchNamespaces={{{namespace}}}"] if mode == "watch-namespaces" else []
    manifests = helm.template_text(*values, namespace=namespace, release=namespace)
    result = cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=manifests)
    applied = result.stdout
    assert "deployment.apps/" in applied and "(server dry run)" in applied, applied
    assert "customresourcedefinition.apiextensions.k8s.io/warmstartjobs" in applied
    if mode == "watch-namespaces":
        assert f"role.rbac.authorization.k8s.io/{namespace}-warmstart" in applied


@dataclass
class Release:
    """The chart installed in one namespace, serving only that namespace."""

    cluster: LocalCluster
    helm: Helm
    name: str
    namespace: str
    metrics_port: int

    def helm_args(self) -> list[str]:
        return ["--namespace", self.namespace, "--kubeconfig", str(self.cluster.kubeconfig)]

    @property
    def fullname(self) -> str:
        return f"{self.name}-warmstart"

    def pod(self) -> Any:
        pods = client.CoreV1Api(self.cluster.api_client()).list_namespaced_pod(
            self.namespace, label_selector=f"app.kubernetes.io/instance={self.name},"
                                           "app.kubernetes.io/component=operator").items
        running = [p for p in pods if p.status.phase == "Running"]
        assert len(running) == 1, [(p.metadata.name, p.status.phase) for p in pods]
        return running[0]

    def log(self) -> str:
        return self.cluster.pod_log(self.namespace, self.pod().metadata.name)

    def metrics(self) -> str:
        url = f"http://{self.pod().status.pod_ip}:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as resp:
            return str(resp.read().decode())

    def edit_role(self, group: str, resource: str, verb: str, *, grant: bool) -> None:
        """Takes one verb away from (or gives it back to) the installed Role, as an admin
        trimming it by hand would."""
        rbac = client.RbacAuthorizationV1Api(self.cluster.api_client())
        role = rbac.read_namespaced_role(self.fullname, self.namespace)
        matching = [r for r in role.rules if group in r.api_groups and resource in r.resources]
        if grant:
            matching[0].verbs.append(verb)
        for rule in matching if not grant else []:
            rule.verbs = [v for v in rule.verbs if v != verb]
        rbac.replace_namespaced_role(self.fullname, self.namespace, role)


@pytest.fixture
def release(cluster: LocalCluster, helm: Helm, crds: None,
            namespace: str) -> Iterator[Release]:
    # Several releases run on the one node at once (tests on two workers): free ports.
    metrics_port, health_port = free_ports(2)
    rel = Release(cluster, helm, namespace, namespace, metrics_port)
    helm.run(
        "install", rel.name, str(CHART), *rel.helm_args(),
        "--set", f"watchNamespaces={{{namespace}}}",
        # The session's CRDs are kubectl's (tests/operator); Helm refuses to adopt them.
        "--set", "crds.enabled=false",
        "--set", f"metrics.port={metrics_port}", "--set", f"livenessProbe.port={health_port}",
        "--set", "operator.pollSeconds=1",
        # The operator and trainer images built here.
        *(arg for value in demo_workloads.helm_values() for arg in ("--set", value)),
        "--wait", "--timeout", "120s")
    try:
        wait_for("the chart's operator to start",
                 lambda: "warmstart operator started" in rel.log(), timeout=60)
        yield rel
    finally:
        # Kopf's finalizers go with the objects while the operator still runs; otherwise
        # they would hold the namespace in Terminating. Kopf re-checks a timer that was
        # mid-run at deletion only after 60 s (settings.background.cancellation_polling).
        cluster.kubectl("delete", "warmstartjobs,modellineages", "--all", "-n", namespace,
                        "--wait=true", "--timeout=100s", check=False, timeout=120)
        helm.run("uninstall", rel.name, *rel.helm_args(), "--wait", "--timeout", "60s",
                 check=False)


def test_operator_story_under_the_charts_rbac(cluster: LocalCluster, namespace: str,
                                              release: Release,
                                              tiny_lineage: TinyLineage) -> None:
    pod = release.pod()
    assert pod.spec.service_account_name == release.fullname
    assert pod.spec.containers[0].command == ["python", "-m", "warmstart_operator"]

    api = served_lineage(cluster, namespace, tiny_lineage)

    # Warm start from the base: trained, gated, promoted, and rolled out to the Deployment.
    api.create("warmstartjobs", wsj_manifest("reviews-week1", tiny_lineage, "week1"))
    assert api.finished("reviews-week1") == "Succeeded", api.get(
        "warmstartjobs", "reviews-week1")["status"]
    api.serving("reviews-week1")
    assert api.deployment_version() == "reviews-week1"
    answer = wait_for("a prediction from week1", api.infer, timeout=60)
    assert answer["outputs"], answer

    # Flipped labels: rejected by the gate, serving untouched.
    api.create("warmstartjobs", wsj_manifest("reviews-corrupt", tiny_lineage, "corrupt"))
    assert api.finished("reviews-corrupt") == "Rejected", api.get(
        "warmstartjobs", "reviews-corrupt")["status"]
    assert api.lineage_status()["servingVersion"] == "reviews-week1"
    assert api.deployment_version() == "reviews-week1"

    # What fails silently without its rule: Events (posted best effort). No finalizer is held on
    # the lineage (the work queue paces, not Kopf timers), so uninstalling needs no manual step.
    events = json.loads(cluster.kubectl("get", "events.v1.events.k8s.io", "-n", namespace,
                                        "-o", "json").stdout)["items"]
    reasons = {e.get("reason") for e in events
               if (e.get("reportingController") or "").startswith("warmstart.dev/")}
    assert {"BaseRegistered", "TrainingStarted", "Promoted", "GateRejected"} <= reasons, reasons
    for kind, name in (("modellineages", "reviews"), ("warmstartjobs", "reviews-corrupt")):
        finalizers = api.get(kind, name)["metadata"].get("finalizers") or []
        assert KOPF_FINALIZER not in finalizers, (kind, finalizers)
    metrics = release.metrics()
    assert (f'warmstart_gate_rejections_total{{lineage="reviews",namespace="{namespace}"}} 1.0'
            in metrics)
    log = release.log()
    assert "Forbidden" not in log, [line for line in log.splitlines() if "Forbidden" in line]


def test_a_missing_rule_is_reported_not_stalled(cluster: LocalCluster, namespace: str,
                                                release: Release,
                                                tiny_lineage: TinyLineage) -> None:
    api = Api(cluster, namespace)
    s3_secret(cluster, namespace)
    api.create("modellineages", lineage_manifest("reviews", tiny_lineage))
    wait_for("base registered", lambda: api.lineage_status().get("versions"), timeout=60)

    release.edit_role("batch", "jobs", "create", grant=False)
    api.create("warmstartjobs", wsj_manifest("reviews-week1", tiny_lineage, "week1",
                                             training={"maxEpochs": 1, "batchSize": 16}))
    # One log line naming the object, the verb (HTTP or RBAC wording) and the resource.
    said = re.compile(rf"ERROR .*WarmStartJob {namespace}/reviews-week1: .*may not "
                      rf"(post|create) Job {namespace}/reviews-week1-train .*403 Forbidden")
    wait_for("the operator to name the missing rule",
             lambda: said.search(release.log()), timeout=60)
    # Nothing half-done: the parent is resolved and recorded, no Job exists, and the run
    # waits (the operator retries) rather than failing for good.
    status = api.get("warmstartjobs", "reviews-week1")["status"]
    assert status["phase"] == "Pending" and status["parent"]["version"] == "base", status
    assert not api.batch.list_namespaced_job(namespace).items

    release.edit_role("batch", "jobs", "create", grant=True)
    wait_for("the training Job once the rule is back",
             lambda: api.get("warmstartjobs", "reviews-week1")["status"].get("jobName"),
             timeout=90)
    assert api.batch.read_namespaced_job("reviews-week1-train", namespace)
