"""What a person sees: `kubectl explain` descriptions, `kubectl get warmstart` columns,
and status that only the status subresource writes."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.conftest import LocalCluster
from warmstart.api import Condition, ModelLineageStatus, WarmStartJobStatus
from warmstart.api.constants import ConditionStatus, JobPhase, Metric, VersionPhase
from warmstart.api.modellineage import LineageVersion
from warmstart.api.warmstartjob import JobMetrics, JobOutput, ResolvedParent

from .builders import BUCKET, DIGEST, make_lineage, make_wsj

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
NOW = datetime(2025, 3, 3, 3, 0, tzinfo=UTC)


def explain(cluster: LocalCluster, path: str) -> str:
    # The API server publishes a new CRD's OpenAPI a moment after it is established.
    deadline = time.monotonic() + 30
    while True:
        result = cluster.kubectl("explain", path, check=False)
        if result.returncode == 0 or time.monotonic() > deadline:
            assert result.returncode == 0, result.stderr
            return result.stdout
        time.sleep(0.5)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("wsj.spec.training", ["maxEpochs", "Upper bound on passes over the training data",
                               "earlyStopping", "learningRate"]),
        ("wsj.spec.parent.version", ["`serving`", "`latest`"]),
        ("wsj.status.phase", ["Succeeded", "Rejected"]),
        ("mlin.spec.promotion", ["minImprovement", "maxReplayRegression", "policy"]),
        ("mlin.spec.storage.secretRef", ["AWS_ACCESS_KEY_ID"]),
        ("modellineage.status.versions", ["manifestDigest", "datasetDigest"]),
    ],
)
def test_kubectl_explain_shows_descriptions(
    crds: LocalCluster, path: str, expected: list[str]
) -> None:
    text = " ".join(explain(crds, path).split())  # explain wraps lines
    for words in expected:
        assert words in text, f"{words!r} not in kubectl explain {path}:\n{text}"


def patch_status(cluster: LocalCluster, namespace: str, kind: str, name: str,
                 status: dict[str, object]) -> None:
    cluster.kubectl("patch", kind, name, "-n", namespace, "--subresource=status",
                    "--type=merge", "-p", json.dumps({"status": status}))


def job_status() -> WarmStartJobStatus:
    return WarmStartJobStatus(
        phase=JobPhase.SUCCEEDED,
        parent=ResolvedParent(version="v3", uri=f"{BUCKET}/lineages/m/v3/", manifest_digest=DIGEST),
        output=JobOutput(version="v4", uri=f"{BUCKET}/lineages/m/v4/", manifest_digest=DIGEST),
        job_name="a-train",
        metrics=JobMetrics(metric=Metric.ACCURACY, summary="accuracy 0.912 (parent 0.897)"),
        conditions=[Condition(type="Complete", status=ConditionStatus.TRUE,
                              reason="GatePassed", last_transition_time=NOW)],
        observed_generation=1,
        start_time=NOW,
    )


def lineage_status() -> ModelLineageStatus:
    return ModelLineageStatus(
        serving_version="v4",
        previous_version="v3",
        latest_version="v4",
        version_count=2,
        versions=[
            LineageVersion(name="v3", uri=f"{BUCKET}/lineages/m/v3/", phase=VersionPhase.RETIRED),
            LineageVersion(name="v4", parent="v3", uri=f"{BUCKET}/lineages/m/v4/",
                           manifest_digest=DIGEST, phase=VersionPhase.PROMOTED, created_at=NOW),
        ],
        conditions=[Condition(type="Ready", status=ConditionStatus.TRUE, reason="Serving",
                              last_transition_time=NOW)],
    )


def test_kubectl_get_warmstart_lists_both_kinds_with_their_columns(
    crds: LocalCluster, namespace: str
) -> None:
    crds.kubectl("apply", "-n", namespace, "-f", str(EXAMPLES))
    patch_status(crds, namespace, "wsj", "reviews-week1", job_status().to_api())
    patch_status(crds, namespace, "mlin", "reviews-classifier", lineage_status().to_api())

    lines = crds.kubectl("get", "warmstart", "-n", namespace).stdout.splitlines()

    def row(name: str) -> list[str]:
        return next(line.split() for line in lines if line.startswith(name + " "))

    header_lines = [line.split() for line in lines if line.startswith("NAME")]
    assert ["NAME", "SERVING", "LATEST", "VERSIONS", "READY", "AGE"] in header_lines
    assert ["NAME", "PHASE", "LINEAGE", "PARENT", "METRIC", "AGE"] in header_lines
    assert row("modellineage.warmstart.dev/reviews-classifier")[1:5] == ["v4", "v4", "2", "True"]
    job = row("warmstartjob.warmstart.dev/reviews-week1")
    assert job[1:4] == ["Succeeded", "reviews-classifier", "v3"]
    assert " ".join(job[4:8]) == "accuracy 0.912 (parent 0.897)"
    assert row("warmstartjob.warmstart.dev/reviews-week1-cold")[1] == "reviews-classifier"


def test_wide_output_adds_the_output_version_and_job(crds: LocalCluster, namespace: str) -> None:
    crds.kubectl("create", "-n", namespace, "-f", "-", input=make_wsj("a").yaml())
    patch_status(crds, namespace, "wsj", "a", job_status().to_api())
    wide = crds.kubectl("get", "wsj", "a", "-n", namespace, "-o", "wide").stdout
    header, line = wide.splitlines()
    assert header.split()[-3:] == ["OUTPUT", "JOB", "AGE"]
    assert line.split()[-3:-1] == ["v4", "a-train"]


def test_status_survives_the_round_trip_through_the_subresource(
    crds: LocalCluster, namespace: str
) -> None:
    crds.kubectl("create", "-n", namespace, "-f", "-", input=make_lineage("m").yaml())
    status = lineage_status()
    patch_status(crds, namespace, "mlin", "m", status.to_api())
    got = json.loads(crds.kubectl("get", "mlin", "m", "-n", namespace, "-o", "json").stdout)
    assert ModelLineageStatus.model_validate(got["status"]) == status


def test_spec_writes_cannot_set_status(crds: LocalCluster, namespace: str) -> None:
    crds.kubectl("create", "-n", namespace, "-f", "-", input=make_wsj("a").yaml())
    crds.kubectl("patch", "wsj", "a", "-n", namespace, "--type=merge",
                 "-p", json.dumps({"status": {"phase": "Succeeded"}}))
    got = json.loads(crds.kubectl("get", "wsj", "a", "-n", namespace, "-o", "json").stdout)
    assert "status" not in got


def test_field_selector_lists_the_jobs_of_one_lineage(crds: LocalCluster, namespace: str) -> None:
    for name, lineage in (("a", "reviews-classifier"), ("b", "spam-filter")):
        manifest = make_wsj(name).lineage(lineage).yaml()
        crds.kubectl("create", "-n", namespace, "-f", "-", input=manifest)
    names = crds.kubectl("get", "wsj", "-n", namespace, "-o", "name",
                         "--field-selector=spec.lineageRef.name=spam-filter").stdout.split()
    assert names == ["warmstartjob.warmstart.dev/b"]


def test_status_version_list_is_bounded(crds: LocalCluster, namespace: str) -> None:
    crds.kubectl("create", "-n", namespace, "-f", "-", input=make_lineage("m").yaml())
    # Built past the models, which refuse a 101st version themselves.
    status = {"versions": [
        LineageVersion(name=f"v{i}", uri=f"{BUCKET}/m/v{i}/", phase=VersionPhase.RETIRED).to_api()
        for i in range(101)
    ]}
    result = crds.kubectl("patch", "mlin", "m", "-n", namespace, "--subresource=status",
                          "--type=merge", "-p", json.dumps({"status": status}), check=False)
    assert result.returncode != 0
    assert "status.versions: Too many: 101: must have at most 100 items" in result.stderr
