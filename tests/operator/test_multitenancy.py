"""Two tenants, two namespaces, two lineages, two Secrets with bucket-scoped credentials:
nothing in one namespace can reach the other's lineage, Secret or bucket."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from kubernetes import client

from tests.conftest import LocalCluster, wait_for
from tests.operator.conftest import (
    OperatorProcess,
    TinyLineage,
    lineage_manifest,
    wsj_manifest,
)
from tests.operator.test_story import Api
from tests.trainer.support import make_tiny_base
from warmstart.storage import S3Settings, Storage


@pytest.fixture
def tenant_buckets(cluster: LocalCluster, tmp_path: Path) -> Iterator[dict[str, TinyLineage]]:
    from warmstart_trainer.publish import publish_base

    admin = cluster.s3_client()
    made: dict[str, TinyLineage] = {}
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
        made[tenant] = TinyLineage(tenant, base_uri, digest, data, store)
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


def condition(api: Api, kind: str) -> dict[str, Any] | None:
    for c in api.lineage_status().get("conditions") or []:
        if c["type"] == kind and c["status"] == "True":
            return dict(c)
    return None


def test_tenants_are_isolated(
    cluster: LocalCluster, namespace: str, second_namespace: str, crds: None,
    tenant_buckets: dict[str, TinyLineage], tmp_path: Path,
) -> None:
    ops = [OperatorProcess(cluster, ns, tmp_path / f"operator-{ns}.log")
           for ns in (namespace, second_namespace)]
    for op in ops:
        op.start()
    try:
        a, b = Api(cluster, namespace), Api(cluster, second_namespace)
        for api, tenant, secret in ((a, "tenant-a", "a-s3"), (b, "tenant-b", "b-s3")):
            api.core.create_namespaced_secret(api.ns, {
                "metadata": {"name": secret}, "stringData": cluster.s3_env(tenant)})
        # Tenant B's lineage, with B's Secret and bucket: registers its base.
        lineage_b = lineage_manifest("reviews", tenant_buckets["tenant-b"])
        lineage_b["spec"]["storage"]["secretRef"]["name"] = "b-s3"
        b.create("modellineages", lineage_b)
        wait_for("B's base", lambda: b.lineage_status().get("versions"), timeout=60)

        # 1. A job in A cannot name B's lineage: references are same-namespace only.
        job = wsj_manifest("cross-lineage", tenant_buckets["tenant-a"], "week1")
        a.create("warmstartjobs", job)
        assert a.finished("cross-lineage") == "Failed"
        cond = next(c for c in a.get("warmstartjobs", "cross-lineage")["status"]["conditions"]
                    if c["type"] == "Failed")
        assert cond["reason"] == "LineageNotFound"

        # 2. A lineage in A cannot use B's Secret by name.
        stolen_secret = lineage_manifest("reviews", tenant_buckets["tenant-a"])
        stolen_secret["spec"]["storage"]["secretRef"]["name"] = "b-s3"
        a.create("modellineages", stolen_secret)
        cond = wait_for("StorageSecretNotFound", lambda: condition(a, "Degraded"), timeout=60)
        assert cond["reason"] == "StorageSecretNotFound"
        assert 'Secret "b-s3" not found' in cond["message"]

        # 3. With its own Secret, A still cannot read B's bucket: the credentials are scoped.
        a.patch_lineage({"storage": {"secretRef": {"name": "a-s3"}}})
        steal = wsj_manifest("cross-bucket", tenant_buckets["tenant-a"], "week1")
        steal["spec"]["parent"] = {"uri": tenant_buckets["tenant-b"].base_uri,
                                   "digest": tenant_buckets["tenant-b"].base_digest}
        a.create("warmstartjobs", steal)
        assert a.finished("cross-bucket") == "Failed"
        cond = next(c for c in a.get("warmstartjobs", "cross-bucket")["status"]["conditions"]
                    if c["type"] == "Failed")
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
