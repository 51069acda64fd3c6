"""The full story on the local control plane with the real trainer and a tiny real model:
base -> warm start promoted -> served -> second warm start promoted -> a worse candidate
rejected (serving untouched) -> pinnedVersion rolls back -> a candidate the server cannot
load is rolled back automatically."""

from __future__ import annotations

import time

import pytest

from tests.conftest import wait_for
from tests.operator import kit


@pytest.mark.slow  # real trainings end to end: minutes on 2 cores
def test_full_story(api: kit.Api, operator: kit.OperatorProcess,
                    tiny_lineage: kit.TinyLineage) -> None:
    kit.serve_reviews(api, tiny_lineage)
    namespace = api.ns

    # Week 1 warm-starts from the base and is promoted; the server pods load it.
    api.create("warmstartjobs", kit.wsj_manifest("reviews-week1", tiny_lineage, "week1"))
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
    api.create("warmstartjobs", kit.wsj_manifest("reviews-week2", tiny_lineage, "week2"))
    assert api.finished("reviews-week2") == "Succeeded"
    week2 = api.get("warmstartjobs", "reviews-week2")["status"]
    assert week2["parent"]["version"] == "reviews-week1"
    assert week2["metrics"]["parent"]["accuracy"] is not None
    api.serving("reviews-week2")
    assert api.version("reviews-week2")["parent"] == "reviews-week1"

    # A candidate trained on flipped labels is rejected; the Deployment is untouched.
    api.create("warmstartjobs", kit.wsj_manifest("reviews-corrupt", tiny_lineage, "corrupt"))
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
    api.create("warmstartjobs", kit.wsj_manifest("reviews-broken", tiny_lineage, "week2",
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
