"""Storage that refuses the lineage's credentials, on the real S3 server: the lineage says
so and a job fails with a reason, no Job created. (The other bad-input cases are decided
without a cluster: tests/operator/test_decisions.py.)"""

from __future__ import annotations

from typing import Any

from tests.conftest import LocalCluster, wait_for
from tests.operator.conftest import (
    OperatorProcess,
    TinyLineage,
    lineage_manifest,
    wsj_manifest,
)
from tests.operator.test_story import Api


def failed_condition(api: Api, name: str) -> dict[str, Any]:
    api.finished(name)
    status = api.get("warmstartjobs", name)["status"]
    assert status["phase"] == "Failed", status
    return dict(next(c for c in status["conditions"] if c["type"] == "Failed"))


def test_unreadable_bucket_fails_with_reason(
    cluster: LocalCluster, namespace: str, operator: OperatorProcess,
    tiny_lineage: TinyLineage,
) -> None:
    api = Api(cluster, namespace)
    # Credentials the S3 server refuses: nothing of the lineage can be read.
    from kubernetes import client

    env = {**cluster.s3_env(), "AWS_SECRET_ACCESS_KEY": "wrong"}
    client.CoreV1Api(api.api).create_namespaced_secret(
        namespace, {"metadata": {"name": "reviews-s3"}, "stringData": env})
    api.create("modellineages", lineage_manifest("reviews", tiny_lineage))

    def degraded() -> dict[str, Any] | None:
        for c in api.lineage_status().get("conditions") or []:
            if c["type"] == "Degraded" and c["status"] == "True":
                return dict(c)
        return None

    cond = wait_for("the lineage to report unreadable storage", degraded, timeout=60)
    assert cond["reason"] == "BaseUnverified"
    assert "cannot read the base manifest" in cond["message"]
    job = wsj_manifest("unreadable", tiny_lineage, "week1")
    job["spec"]["parent"] = {"uri": tiny_lineage.base_uri, "digest": tiny_lineage.base_digest}
    api.create("warmstartjobs", job)
    cond = failed_condition(api, "unreadable")
    assert cond["reason"] == "ParentManifestUnreadable", cond
    assert "cannot read the parent manifest" in cond["message"], cond
    assert api.batch.list_namespaced_job(namespace).items == []
