"""The retraining schedule creates WarmStartJobs with deterministic names (once per tick),
and retention deletes old versions' weights but never a manifest or a protected version."""

from __future__ import annotations

import datetime as dt
from typing import Any

from tests.conftest import LocalCluster, wait_for
from tests.operator.conftest import (
    OperatorProcess,
    TinyLineage,
    lineage_manifest,
    s3_secret,
    wsj_manifest,
)
from tests.operator.test_story import GROUP, VERSION, Api
from warmstart import record


def scheduled(api: Api) -> list[dict[str, Any]]:
    items = api.custom.list_namespaced_custom_object(GROUP, VERSION, api.ns, "warmstartjobs")
    return [o for o in items["items"]
            if (o["metadata"].get("labels") or {}).get("warmstart.dev/scheduled-by")]


def test_schedule_creates_one_job_per_tick(cluster: LocalCluster, namespace: str,
                                           operator: OperatorProcess,
                                           tiny_lineage: TinyLineage) -> None:
    api = Api(cluster, namespace)
    s3_secret(cluster, namespace)
    template = wsj_manifest("unused", tiny_lineage, "week1")["spec"]
    template.pop("lineageRef")
    template["suspend"] = True  # the schedule is under test here, not training
    body = lineage_manifest("reviews", tiny_lineage, retraining={
        "schedule": "* * * * *", "template": template, "concurrencyPolicy": "Forbid"})
    api.create("modellineages", body)
    jobs = wait_for("a scheduled WarmStartJob", lambda: scheduled(api), timeout=90)
    (job,) = jobs
    assert job["metadata"]["name"].startswith("reviews-")
    assert job["spec"]["lineageRef"] == {"name": "reviews"}
    assert job["metadata"]["ownerReferences"][0]["kind"] == "ModelLineage"
    status = api.lineage_status()
    assert status["lastScheduledJob"] == job["metadata"]["name"]
    # Restarting the operator within the same minute creates nothing new (same name).
    operator.kill()
    operator.start()
    first_tick = dt.datetime.fromisoformat(status["lastScheduleTime"].replace("Z", "+00:00"))
    if (dt.datetime.now(dt.UTC) - first_tick).total_seconds() < 50:
        assert [o["metadata"]["name"] for o in scheduled(api)] == [job["metadata"]["name"]]
    # The job is still unfinished (suspended), so under Forbid the next tick is skipped.
    wait_for("the next tick to be recorded", lambda: api.lineage_status()[
        "lastScheduleTime"] != status["lastScheduleTime"], timeout=90)
    assert len(scheduled(api)) == 1


def test_retention_keeps_manifests_and_protected_versions(
    cluster: LocalCluster, namespace: str, operator: OperatorProcess,
    tiny_lineage: TinyLineage,
) -> None:
    api = Api(cluster, namespace)
    s3_secret(cluster, namespace)
    api.create("modellineages", lineage_manifest("reviews", tiny_lineage,
                                                 retention={"keepVersions": 1}))
    wait_for("base registered", lambda: api.lineage_status().get("versions"), timeout=60)
    # Three recorded versions, written to storage as the trainer would.
    store = tiny_lineage.store
    versions = []
    for i in range(1, 4):
        prefix = tiny_lineage.uri(f"reviews/v{i}/")
        store.put_bytes(prefix + "model.safetensors", b"weights-%d" % i)
        manifest = record.Manifest(
            version=f"v{i}", lineage="reviews", task="sequence-classification",
            labels=("negative", "positive"), parent=None,
            files=(record.FileEntry("model.safetensors",
                                    record.sha256_bytes(b"weights-%d" % i), 9),),
            created_at=f"2026-11-2{i}T00:00:00Z")
        raw = manifest.to_bytes()
        store.put_bytes(prefix + "manifest.json", raw)
        versions.append({"name": f"v{i}", "uri": prefix, "phase": "Candidate",
                         "manifestDigest": record.manifest_digest(raw),
                         "createdAt": f"2026-11-2{i}T00:00:00Z"})
    status = api.lineage_status()
    status["versions"] = status["versions"] + versions
    status["versionCount"] = 4
    # v1 is the previous version: protected although it is the oldest.
    status["previousVersion"] = "v1"
    api.custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, "modellineages", "reviews", {"status": status})

    def retired() -> list[str]:
        return [v["name"] for v in api.lineage_status()["versions"]
                if v["phase"] == "Retired"]

    assert wait_for("retention", retired, timeout=60) == ["v2"]
    assert not store.exists(tiny_lineage.uri("reviews/v2/model.safetensors"))
    assert store.exists(tiny_lineage.uri("reviews/v2/manifest.json"))
    for kept in ("v1", "v3"):
        assert store.exists(tiny_lineage.uri(f"reviews/{kept}/model.safetensors"))
    assert store.exists(tiny_lineage.base_uri + "model.safetensors")
    reason = next(v["reason"] for v in api.lineage_status()["versions"] if v["name"] == "v2")
    assert "manifest kept" in reason
