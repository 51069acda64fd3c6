"""The operator killed between two side effects at every phase boundary, restarted each
time: still exactly one Job per WarmStartJob, each version registered once, and serving
consistent with the lineage.

One training carries all four crashes: the operator is started with every failpoint armed,
dies at the first one the run reaches, and is restarted with the ones still ahead armed,
until it finishes the story with none.
"""

from __future__ import annotations

from pathlib import Path

from tests.conftest import LocalCluster, wait_for
from tests.operator import kit
from warmstart_operator import failpoints

BOUNDARIES = [
    failpoints.AFTER_PARENT_RESOLVED,
    failpoints.AFTER_JOB_CREATED,
    failpoints.AFTER_VERSION_REGISTERED,
    failpoints.AFTER_DEPLOYMENT_APPLIED,
]


def test_killed_at_every_phase_boundary(
    cluster: LocalCluster, namespace: str, api: kit.Api, crds: None,
    tiny_lineage: kit.TinyLineage, tmp_path: Path,
) -> None:
    api.s3_secret()
    api.apps.create_namespaced_deployment(namespace, kit.server_deployment("reviews-server"))
    op = kit.OperatorProcess(cluster, namespace, tmp_path / "operator.log")
    crashes = []
    try:
        for index, boundary in enumerate(BOUNDARIES):
            op.extra_env = {failpoints.ENV: ",".join(BOUNDARIES[index:])}
            op.start()
            if index == 0:
                api.create("modellineages", kit.lineage_manifest("reviews", tiny_lineage,
                                                             serving="reviews-server"))
                api.create("warmstartjobs", kit.wsj_manifest("reviews-week1", tiny_lineage,
                                                         "week1"))
            assert op.proc is not None
            code = wait_for(f"the operator to die {boundary}", op.proc.poll, timeout=300)
            assert code == 137, op.log()
            crashes.append(boundary)
        op.extra_env = {}
        op.start()
        assert api.finished("reviews-week1") == "Succeeded"
        api.serving("reviews-week1")
    finally:
        op.stop()

    assert crashes == BOUNDARIES
    jobs = api.batch.list_namespaced_job(namespace).items
    assert [j.metadata.name for j in jobs] == ["reviews-week1-train"]
    status = api.lineage_status()
    assert [v["name"] for v in status["versions"]] == ["base", "reviews-week1"]
    assert status["versionCount"] == 2
    assert status["servingVersion"] == status["desiredVersion"] == "reviews-week1"
    assert api.deployment_version() == "reviews-week1"
    assert api.version("reviews-week1")["phase"] == "Promoted"
    wsj = api.get("warmstartjobs", "reviews-week1")["status"]
    assert wsj["output"]["version"] == "reviews-week1"
