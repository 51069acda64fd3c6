"""The full story on the local control plane with the real trainer and a tiny real model:
base -> warm start promoted -> served -> second warm start promoted -> a worse candidate
rejected (serving untouched) -> pinnedVersion rolls back -> a candidate the server cannot
load is rolled back automatically."""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

from kubernetes import client

from tests.conftest import LocalCluster, wait_for
from tests.operator.conftest import (
    OperatorProcess,
    TinyLineage,
    lineage_manifest,
    s3_secret,
    server_deployment,
    wsj_manifest,
)

GROUP, VERSION = "warmstart.dev", "v1alpha1"


class Api:
    def __init__(self, cluster: LocalCluster, namespace: str) -> None:
        self.api = cluster.api_client()
        self.ns = namespace
        self.custom = client.CustomObjectsApi(self.api)
        self.apps = client.AppsV1Api(self.api)
        self.core = client.CoreV1Api(self.api)
        self.batch = client.BatchV1Api(self.api)

    def create(self, plural: str, body: dict[str, Any]) -> None:
        self.custom.create_namespaced_custom_object(GROUP, VERSION, self.ns, plural, body)

    def get(self, plural: str, name: str) -> dict[str, Any]:
        obj: dict[str, Any] = self.custom.get_namespaced_custom_object(
            GROUP, VERSION, self.ns, plural, name)
        return obj

    def patch_lineage(self, spec: dict[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object(GROUP, VERSION, self.ns, "modellineages",
                                                   "reviews", {"spec": spec})

    def lineage_status(self) -> dict[str, Any]:
        return dict(self.get("modellineages", "reviews").get("status") or {})

    def wsj_phase(self, name: str) -> str | None:
        return (self.get("warmstartjobs", name).get("status") or {}).get("phase")

    def finished(self, name: str) -> str:
        def done() -> str | None:
            phase = self.wsj_phase(name)
            return phase if phase in ("Succeeded", "Rejected", "Failed") else None

        phase = str(wait_for(f"WarmStartJob {name} to finish", done, timeout=300))
        if phase == "Failed":
            print(json.dumps(self.get("warmstartjobs", name).get("status"), indent=1))
        return phase

    def version(self, name: str) -> dict[str, Any]:
        for v in self.lineage_status().get("versions") or []:
            if v["name"] == name:
                return dict(v)
        raise AssertionError(f"version {name} not in {self.lineage_status()}")

    def serving(self, version: str, timeout: float = 180) -> None:
        wait_for(f"lineage to serve {version}",
                 lambda: self.lineage_status().get("servingVersion") == version, timeout=timeout)

    def deployment_version(self) -> str | None:
        dep = self.apps.read_namespaced_deployment("reviews-server", self.ns)
        return (dep.spec.template.metadata.annotations or {}).get("warmstart.dev/model-version")

    def infer(self) -> dict[str, Any]:
        pods = [p for p in self.core.list_namespaced_pod(
            self.ns, label_selector="app=reviews-server").items
            if p.status.phase == "Running" and not p.metadata.deletion_timestamp
            and any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])]
        assert pods, "no ready server pod"
        pod = pods[0]
        env = {e.name: e.value for e in pod.spec.containers[0].env or []}
        body = json.dumps({"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES",
                                       "data": ["a truly wonderful film"]}]}).encode()
        req = urllib.request.Request(
            f"http://{pod.status.pod_ip}:8080/v2/models/reviews/infer", data=body,
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            answer: dict[str, Any] = json.loads(resp.read())
        answer["_model_uri"] = env.get("WARMSTART_MODEL_URI")
        return answer


def served_lineage(cluster: LocalCluster, namespace: str, tiny_lineage: TinyLineage) -> Api:
    """Secret, serving Deployment and lineage `reviews`, once its base is registered."""
    api = Api(cluster, namespace)
    s3_secret(cluster, namespace)
    api.apps.create_namespaced_deployment(namespace, server_deployment("reviews-server"))
    api.create("modellineages", lineage_manifest("reviews", tiny_lineage,
                                                 serving="reviews-server"))
    # The base (a bare encoder: nothing to serve yet) is registered as version 0.
    wait_for("base registered", lambda: api.lineage_status().get("versions"), timeout=60)
    assert api.version("base")["manifestDigest"] == tiny_lineage.base_digest
    return api


def test_full_story(cluster: LocalCluster, namespace: str, operator: OperatorProcess,
                    tiny_lineage: TinyLineage) -> None:
    api = served_lineage(cluster, namespace, tiny_lineage)

    # Week 1 warm-starts from the base and is promoted; the server pods load it.
    api.create("warmstartjobs", wsj_manifest("reviews-week1", tiny_lineage, "week1"))
    assert api.finished("reviews-week1") == "Succeeded", api.get("warmstartjobs",
                                                                  "reviews-week1")
    wsj = api.get("warmstartjobs", "reviews-week1")
    assert wsj["status"]["parent"]["version"] == "base"
    assert wsj["status"]["parent"]["manifestDigest"] == tiny_lineage.base_digest
    assert api.version("reviews-week1")["phase"] == "Promoted"
    api.serving("reviews-week1")
    assert api.deployment_version() == "reviews-week1"
    answer = wait_for("a prediction from week1", api.infer, timeout=60)
    assert answer["_model_uri"].endswith("/reviews/reviews-week1/")
    assert answer["outputs"], answer

    # Week 2 warm-starts from the serving version (week 1) and is promoted.
    api.create("warmstartjobs", wsj_manifest("reviews-week2", tiny_lineage, "week2"))
    assert api.finished("reviews-week2") == "Succeeded"
    week2 = api.get("warmstartjobs", "reviews-week2")["status"]
    assert week2["parent"]["version"] == "reviews-week1"
    assert week2["metrics"]["parent"]["accuracy"] is not None
    api.serving("reviews-week2")
    assert api.version("reviews-week2")["parent"] == "reviews-week1"

    # A candidate trained on flipped labels is rejected; the Deployment is untouched.
    api.create("warmstartjobs", wsj_manifest("reviews-corrupt", tiny_lineage, "corrupt"))
    assert api.finished("reviews-corrupt") == "Rejected", api.get(
        "warmstartjobs", "reviews-corrupt")["status"]
    rejected = api.version("reviews-corrupt")
    assert rejected["phase"] == "Rejected"
    assert "InsufficientImprovement" in rejected["reason"]
    assert api.deployment_version() == "reviews-week2"
    assert api.lineage_status()["servingVersion"] == "reviews-week2"

    # GitOps rollback: pin week 1.
    api.patch_lineage({"pinnedVersion": "reviews-week1"})
    api.serving("reviews-week1")
    assert api.deployment_version() == "reviews-week1"

    # Issue 17's sequence: week 1 pinned and serving, week 2 promoted earlier. A candidate
    # whose checkpoint the server cannot load is recorded (Manual), its weights altered in
    # storage, then pinned. The server never becomes ready; after progressDeadlineSeconds
    # (60 s here) the operator rolls back to exactly what served when that rollout began
    # (week 1, not the promoted week 2), says so, and stays there.
    api.create("warmstartjobs", wsj_manifest("reviews-broken", tiny_lineage, "week2",
                                             promotion="Manual", training={
                                                 "maxEpochs": 1, "batchSize": 8,
                                                 "learningRate": 0.001, "maxSeqLength": 32,
                                                 "seed": 3, "checkpointEverySteps": 1000}))
    assert api.finished("reviews-broken") == "Succeeded"
    assert api.version("reviews-broken")["phase"] == "Candidate"
    weights = tiny_lineage.uri("reviews/reviews-broken/model.safetensors")
    data = bytearray(tiny_lineage.store.get_bytes(weights))
    data[len(data) // 2] ^= 0xFF
    tiny_lineage.store.put_bytes(weights, bytes(data))
    api.patch_lineage({"pinnedVersion": "reviews-broken"})
    wait_for("the broken version to be rolled back",
             lambda: api.version("reviews-broken")["phase"] == "RolledBack", timeout=180)
    wait_for("the rollback to complete", lambda: next(
        c for c in api.lineage_status()["conditions"] if c["type"] == "Progressing"
    )["reason"] == "RollbackComplete", timeout=120)
    assert api.deployment_version() == "reviews-week1"
    status = api.lineage_status()
    assert status["servingVersion"] == "reviews-week1"
    degraded = next(c for c in status["conditions"] if c["type"] == "Degraded")
    assert degraded["status"] == "True" and degraded["reason"] == "RolledBack"
    assert "rolled back to reviews-week1" in degraded["message"]
    reasons = [e.reason for e in sorted(
        api.core.list_namespaced_event(
            namespace, field_selector="involvedObject.name=reviews").items,
        key=lambda e: (e.event_time or e.first_timestamp, e.metadata.name))]
    tail = reasons[reasons.index("RolledBack") - 1:]
    assert tail == ["RollingOut", "RolledBack", "RollbackComplete"], reasons
    # It stays: no second rollout that nobody asked for.
    time.sleep(5)
    assert api.deployment_version() == "reviews-week1"
    api.patch_lineage({"pinnedVersion": None})
    api.serving("reviews-week2")

    # Every transition left an Event, and /metrics counts what happened.
    metrics = operator.metrics()
    assert 'warmstart_promotions_total{lineage="reviews",namespace="' in metrics
    assert 'warmstart_gate_rejections_total{lineage="reviews",namespace="' + namespace + \
        '"} 1.0' in metrics
    assert 'warmstart_rollbacks_total{lineage="reviews",namespace="' + namespace + \
        '"} 1.0' in metrics
    # Exactly one training Job per WarmStartJob.
    jobs = api.batch.list_namespaced_job(namespace).items
    assert sorted(j.metadata.name for j in jobs) == sorted(
        f"reviews-{n}-train" for n in ("week1", "week2", "corrupt", "broken"))
