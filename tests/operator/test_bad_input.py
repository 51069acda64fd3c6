"""Storage that refuses the lineage's credentials, on the real S3 server: the lineage says
so and a job fails with a reason, no Job created. (The other bad-input cases are decided
without a cluster: tests/operator/test_decisions.py.)"""

from __future__ import annotations

from tests.conftest import LocalCluster
from tests.operator import kit


def test_unreadable_bucket_fails_with_reason(
    cluster: LocalCluster, namespace: str, api: kit.Api, operator: kit.OperatorProcess,
    tiny_lineage: kit.TinyLineage,
) -> None:
    # Credentials the S3 server refuses: nothing of the lineage can be read.
    from kubernetes import client

    env = {**cluster.s3_env(), "AWS_SECRET_ACCESS_KEY": "wrong"}
    client.CoreV1Api(api.api).create_namespaced_secret(
        namespace, {"metadata": {"name": "reviews-s3"}, "stringData": env})
    api.create("modellineages", kit.lineage_manifest("reviews", tiny_lineage))

    cond = api.degraded("reviews", timeout=60)
    assert cond["reason"] == "BaseUnverified"
    assert "cannot read the base manifest" in cond["message"]
    job = kit.wsj_manifest("unreadable", tiny_lineage, "week1")
    job["spec"]["parent"] = {"uri": tiny_lineage.base_uri, "digest": tiny_lineage.base_digest}
    api.create("warmstartjobs", job)
    cond = api.failed_condition("unreadable")
    assert cond["reason"] == "ParentManifestUnreadable", cond
    assert "cannot read the parent manifest" in cond["message"], cond
    assert api.batch.list_namespaced_job(namespace).items == []
