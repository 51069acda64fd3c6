"""Input only the operator can judge ends as Failed with a reason a person understands:
no Job created, nothing registered."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import LocalCluster, wait_for
from tests.operator.conftest import (
    OperatorProcess,
    TinyLineage,
    lineage_manifest,
    s3_secret,
    wsj_manifest,
)
from tests.operator.test_story import Api


def failed_condition(api: Api, name: str) -> dict[str, Any]:
    api.finished(name)
    status = api.get("warmstartjobs", name)["status"]
    assert status["phase"] == "Failed", status
    return dict(next(c for c in status["conditions"] if c["type"] == "Failed"))


@pytest.fixture
def ready_lineage(cluster: LocalCluster, namespace: str, operator: OperatorProcess,
                  tiny_lineage: TinyLineage) -> Api:
    api = Api(cluster, namespace)
    s3_secret(cluster, namespace)
    api.create("modellineages", lineage_manifest("reviews", tiny_lineage))
    wait_for("base registered", lambda: api.lineage_status().get("versions"), timeout=60)
    return api


def test_bad_input_fails_with_reasons(ready_lineage: Api, tiny_lineage: TinyLineage,
                                      cluster: LocalCluster, namespace: str) -> None:
    api = ready_lineage
    cases: list[tuple[str, dict[str, Any], str, str]] = []

    unknown_lineage = wsj_manifest("no-lineage", tiny_lineage, "week1")
    unknown_lineage["spec"]["lineageRef"]["name"] = "nope"
    cases.append(("no-lineage", unknown_lineage, "LineageNotFound",
                  'ModelLineage "nope" does not exist'))

    cases.append(("no-parent", wsj_manifest("no-parent", tiny_lineage, "week1",
                                            parent="v42"),
                  "ParentNotFound", 'parent version "v42" is not a version'))

    bad_digest = wsj_manifest("bad-digest", tiny_lineage, "week1")
    bad_digest["spec"]["parent"] = {"uri": tiny_lineage.base_uri, "digest": "sha256:" + "0" * 64}
    cases.append(("bad-digest", bad_digest, "ParentDigestMismatch", "expected sha256:000"))

    missing_data = wsj_manifest("no-data", tiny_lineage, "week1")
    missing_data["spec"]["dataset"]["trainURI"] = tiny_lineage.uri("data/missing.jsonl")
    cases.append(("no-data", missing_data, "DatasetNotFound", "spec.dataset.trainURI"))

    for _, body, _, _ in cases:
        api.create("warmstartjobs", body)
    for name, _, reason, words in cases:
        cond = failed_condition(api, name)
        assert cond["reason"] == reason, cond
        assert words in cond["message"], cond
    assert api.batch.list_namespaced_job(namespace).items == []
    assert [v["name"] for v in api.lineage_status()["versions"]] == ["base"]
    events = api.core.list_namespaced_event(namespace).items
    assert {"LineageNotFound", "ParentNotFound", "ParentDigestMismatch",
            "DatasetNotFound"} <= {e.reason for e in events}


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
