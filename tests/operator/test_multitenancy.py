"""Two tenants, two namespaces, two lineages, two Secrets with bucket-scoped credentials:
nothing in one namespace can reach the other's lineage, Secret or bucket."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from kubernetes import client

from tests.conftest import LocalCluster, wait_for
from tests.operator import kit
from tests.trainer.support import make_tiny_base
from warmstart.storage import S3Settings, Storage


@pytest.fixture
def tenant_buckets(cluster: LocalCluster, tmp_path: Path) -> Iterator[dict[str, kit.TinyLineage]]:
    from warmstart_trainer.publish import publish_base

    admin = cluster.s3_client()
    made: dict[str, kit.TinyLineage] = {}
    for tenant in ("tenant-a", "tenant-b"):
        admin.create_bucket(Bucket=tenant)
        store = Storage(S3Settings.from_env(cluster.s3_env(tenant)))
        base_uri = f"s3://{tenant}/reviews/base/"
        _, digest = publish_base(store, make_tiny_base(tmp_path / tenant), base_uri,
                                 lineage="reviews")
        data = {}
        for key in ("week1-train", "week1-val", "holdout"):
            data[key] = f"s3://{tenant}/data/{key}.jsonl"
            store.put_bytes(data[key], b'{"text": "good film", "label": "positive"}\n')
        made[tenant] = kit.TinyLineage(tenant, base_uri, digest, data, store)
    try:
        yield made
    finally:
        for tenant in made:
            listed = admin.list_objects_v2(Bucket=tenant).get("Contents", [])
            if listed:
                admin.delete_objects(Bucket=tenant, Delete={
                    "Objects": [{"Key": o["Key"]} for o in listed]})
            admin.delete_bucket(Bucket=tenant)


@pytest.fixture
def second_namespace(cluster: LocalCluster, namespace: str) -> Iterator[str]:
    core = client.CoreV1Api(cluster.api_client())
    name = f"{namespace[:50]}-b"
    core.create_namespace({"metadata": {"name": name}})
    try:
        yield name
    finally:
        core.delete_namespace(name)


def test_tenants_are_isolated(
    cluster: LocalCluster, namespace: str, second_namespace: str, crds: None,
    tenant_buckets: dict[str, kit.TinyLineage], tmp_path: Path,
) -> None:
    ops = [kit.OperatorProcess(cluster, ns, tmp_path / f"operator-{ns}.log")
           for ns in (namespace, second_namespace)]
    for op in ops:
        op.start()
    try:
        a, b = kit.Api(cluster, namespace), kit.Api(cluster, second_namespace)
        for api, tenant, secret in ((a, "tenant-a", "a-s3"), (b, "tenant-b", "b-s3")):
            api.core.create_namespaced_secret(api.ns, {
                "metadata": {"name": secret}, "stringData": cluster.s3_env(tenant)})
        # Tenant B's lineage, with B's Secret and bucket: registers its base.
        lineage_b = kit.lineage_manifest("reviews", tenant_buckets["tenant-b"])
        lineage_b["spec"]["storage"]["secretRef"]["name"] = "b-s3"
        b.create("modellineages", lineage_b)
        wait_for("B's base", lambda: b.lineage_status().get("versions"), timeout=60)

        # 1. A job in A cannot name B's lineage: references are same-namespace only.
        job = kit.wsj_manifest("cross-lineage", tenant_buckets["tenant-a"], "week1")
        a.create("warmstartjobs", job)
        cond = a.failed_condition("cross-lineage")
        assert cond["reason"] == "LineageNotFound"

        # 2. A lineage in A cannot use B's Secret by name.
        stolen_secret = kit.lineage_manifest("reviews", tenant_buckets["tenant-a"])
        stolen_secret["spec"]["storage"]["secretRef"]["name"] = "b-s3"
        a.create("modellineages", stolen_secret)
        cond = a.degraded("reviews", timeout=60)
        assert cond["reason"] == "StorageSecretNotFound"
        assert 'Secret "b-s3" not found' in cond["message"]

        # 3. With its own Secret, A still cannot read B's bucket: the credentials are scoped.
        a.patch_lineage({"storage": {"secretRef": {"name": "a-s3"}}})
        steal = kit.wsj_manifest("cross-bucket", tenant_buckets["tenant-a"], "week1")
        steal["spec"]["parent"] = {"uri": tenant_buckets["tenant-b"].base_uri,
                                   "digest": tenant_buckets["tenant-b"].base_digest}
        a.create("warmstartjobs", steal)
        cond = a.failed_condition("cross-bucket")
        assert cond["reason"] == "ParentManifestUnreadable"
        assert "access denied" in cond["message"].lower() or "403" in cond["message"]
        assert a.batch.list_namespaced_job(namespace).items == []
        assert b.batch.list_namespaced_job(second_namespace).items == []
    finally:
        for op in ops:
            op.stop()
    # And directly: tenant A's credentials cannot list or read tenant B's bucket.
    s3a = cluster.s3_client(*cluster.info.s3_tenants["tenant-a"])
    with pytest.raises(ClientError):
        s3a.list_objects_v2(Bucket="tenant-b")
    with pytest.raises(ClientError):
        s3a.get_object(Bucket="tenant-b", Key="reviews/base/manifest.json")
