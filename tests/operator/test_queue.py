"""One training per lineage at a time by default: the rest wait as Queued and start in
creation order, woken by the event that frees the slot (the periodic safety net is set far
beyond the test's timeouts, so a missed wake-up fails the test); a suspended job keeps its
place out of the queue until it is resumed."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from tests.conftest import LocalCluster, wait_for
from tests.operator.conftest import (
    OperatorProcess,
    TinyLineage,
    lineage_manifest,
    s3_secret,
    wsj_manifest,
)
from tests.operator.test_story import Api


def _ts(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def _quick(name: str, lineage: TinyLineage, **spec: Any) -> dict[str, Any]:
    body = wsj_manifest(name, lineage, "week1", **spec)
    body["spec"]["training"]["maxEpochs"] = 1
    return body


def test_jobs_of_one_lineage_train_one_at_a_time_in_creation_order(
    cluster: LocalCluster, crds: None, namespace: str, tiny_lineage: TinyLineage,
    tmp_path: Path,
) -> None:
    op = OperatorProcess(cluster, namespace, tmp_path / "operator.log")
    op.start()
    try:
        api = Api(cluster, namespace)
        s3_secret(cluster, namespace)
        api.create("modellineages", lineage_manifest("reviews", tiny_lineage,
                                                     promotion={"policy": "Manual"}))
        api.create("warmstartjobs", _quick("q-1", tiny_lineage))
        wait_for("q-1 to start training", lambda: api.wsj_phase("q-1") == "Training",
                 timeout=120)
        api.create("warmstartjobs", _quick("q-2", tiny_lineage, suspend=True))
        api.create("warmstartjobs", _quick("q-3", tiny_lineage))
        wait_for("q-2 and q-3 to be Queued", lambda: api.wsj_phase("q-2") == "Queued"
                 and api.wsj_phase("q-3") == "Queued", timeout=60)
        assert not _jobs(api) - {"q-1-train"}, "a queued job got a training Job"

        assert api.finished("q-1") == "Succeeded", op.log()
        assert api.finished("q-3") == "Succeeded", op.log()
        first = api.get("warmstartjobs", "q-1")["status"]
        third_job = api.batch.read_namespaced_job("q-3-train", namespace)
        # q-3 started only once q-1 had ended (both clocks are the API server's).
        assert third_job.metadata.creation_timestamp >= _ts(first["completionTime"])
        # The suspended job kept out of the way and still has no Job.
        assert api.wsj_phase("q-2") == "Queued"
        assert "q-2-train" not in _jobs(api)

        api.custom.patch_namespaced_custom_object(
            "warmstart.dev", "v1alpha1", namespace, "warmstartjobs", "q-2",
            {"spec": {"suspend": False}})
        assert api.finished("q-2") == "Succeeded", op.log()
        events = api.core.list_namespaced_event(
            namespace, field_selector="involvedObject.name=q-3").items
        assert any(e.reason == "LineageBusy" and "q-1" in e.message for e in events), \
            [(e.reason, e.message) for e in events]
    finally:
        op.stop()


def _jobs(api: Api) -> set[str]:
    return {j.metadata.name for j in api.batch.list_namespaced_job(api.ns).items}
