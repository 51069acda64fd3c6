"""Unit tests of the operator's pure decisions: gate, names, builders, status index,
rollout and schedule arithmetic."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from warmstart import record
from warmstart.api.common import MetricValues
from warmstart.api.constants import Metric, MetricMode, VersionPhase
from warmstart.api.modellineage import (
    LineageVersion,
    ModelLineageSpec,
    ModelLineageStatus,
    Promotion,
)
from warmstart.api.warmstartjob import ParentReference, WarmStartJobSpec
from warmstart_operator import builders, gate, lineage_index, naming
from warmstart_operator.config import ConfigError, OperatorConfig
from warmstart_operator.jobsteps import job_outcome, termination_reason
from warmstart_operator.rollout import applied_version, rollout_state
from warmstart_operator.schedule import due_tick

ACC = Metric.ACCURACY


def mv(acc: float | None = None, loss: float | None = None) -> MetricValues:
    return MetricValues(accuracy=acc, loss=loss)


# -- gate -------------------------------------------------------------------------------

def test_gate_passes_on_improvement_and_reports_numbers() -> None:
    verdict = gate.decide(Promotion(metric=ACC, min_improvement=0.01), mv(0.9), mv(0.85),
                          "parent v1")
    assert verdict.passed and verdict.reason == "GatePassed"
    assert "0.9000 vs 0.8500 for parent v1" in verdict.message


@pytest.mark.parametrize(
    ("promotion", "candidate", "reference", "reason"),
    [
        (Promotion(metric=ACC, min_value=0.95), mv(0.9), None, "BelowMinValue"),
        (Promotion(metric=ACC, min_improvement=0.02), mv(0.86), mv(0.85),
         "InsufficientImprovement"),
        (Promotion(metric=ACC), mv(0.5), mv(0.9), "InsufficientImprovement"),
        (Promotion(metric=Metric.LOSS), mv(loss=0.7), mv(loss=0.3), "InsufficientImprovement"),
        (Promotion(metric=Metric.LOSS, min_value=0.5), mv(loss=0.6), None, "BelowMinValue"),
        (Promotion(metric=ACC), MetricValues(), mv(0.5), "MetricMissing"),
    ],
)
def test_gate_rejections(promotion: Promotion, candidate: MetricValues,
                         reference: MetricValues | None, reason: str) -> None:
    verdict = gate.decide(promotion, candidate, reference, "serving version v2")
    assert not verdict.passed
    assert verdict.reason == reason


def test_gate_loss_mode_lower_is_better() -> None:
    promotion = Promotion(metric=Metric.LOSS, min_improvement=0.05)
    assert promotion.effective_mode() == MetricMode.MIN
    assert gate.decide(promotion, mv(loss=0.2), mv(loss=0.3), "p").passed
    assert not gate.decide(promotion, mv(loss=0.28), mv(loss=0.3), "p").passed


def test_gate_replay_regression_is_the_forgetting_guard() -> None:
    promotion = Promotion(metric=ACC, max_replay_regression=0.02)
    replays = [gate.ReplayResult("s3://b/w1.jsonl", mv(0.80), mv(0.90))]
    verdict = gate.decide(promotion, mv(0.95), mv(0.9), "p", replays)
    assert not verdict.passed and verdict.reason == "ReplayRegression"
    assert "s3://b/w1.jsonl" in verdict.message
    ok = [gate.ReplayResult("s3://b/w1.jsonl", mv(0.89), mv(0.90))]
    assert gate.decide(promotion, mv(0.95), mv(0.9), "p", ok).passed
    # Without maxReplayRegression the replay sets are reported but do not gate.
    assert gate.decide(Promotion(metric=ACC), mv(0.95), mv(0.9), "p", replays).passed


# -- names ------------------------------------------------------------------------------

def test_names_are_deterministic_and_bounded() -> None:
    assert naming.training_job("reviews-week1") == "reviews-week1-train"
    long = "x" * 70
    a, b = naming.training_job(long), naming.training_job(long + "y")
    assert len(a) <= 63 and len(b) <= 63 and a != b
    assert naming.training_job(long) == a
    tick = int(dt.datetime(2026, 11, 30, 3, 0, tzinfo=dt.UTC).timestamp())
    assert naming.scheduled_job("reviews", tick) == naming.scheduled_job("reviews", tick + 30)
    assert naming.scheduled_job("reviews", tick) != naming.scheduled_job("reviews", tick + 60)


# -- builders ---------------------------------------------------------------------------

LINEAGE = ModelLineageSpec.model_validate({
    "labels": ["negative", "positive"],
    "storage": {"uri": "s3://bucket/reviews/", "secretRef": {"name": "reviews-s3"}},
    "base": {"uri": "s3://bucket/reviews/base/"},
    "evaluation": {"holdoutURI": "s3://bucket/data/holdout.jsonl",
                   "replayURIs": ["s3://bucket/data/w0.jsonl"]},
})
WSJ: dict[str, Any] = {
    "apiVersion": "warmstart.dev/v1alpha1", "kind": "WarmStartJob",
    "metadata": {"name": "reviews-week1", "namespace": "team-a", "uid": "uid-1"},
    "spec": {
        "lineageRef": {"name": "reviews"},
        "dataset": {"trainURI": "s3://bucket/data/w1.jsonl", "validationFraction": 0.2},
        "training": {"maxEpochs": 3, "earlyStopping": {"patience": 1}},
        "resources": {"gpus": 1, "requests": {"cpu": "2"}, "nodeSelector": {"pool": "gpu"},
                      "priorityClassName": "batch"},
        "queueName": "team-a-queue",
    },
}
PARENT = builders.ResolvedParent("base", "s3://bucket/reviews/base/", "sha256:" + "a" * 64)


def test_train_spec_maps_the_job_and_lineage() -> None:
    spec = WarmStartJobSpec.model_validate(WSJ["spec"])
    tspec = builders.train_spec("reviews-week1", spec, "reviews", LINEAGE, PARENT)
    doc = tspec.to_json()
    assert doc["output"]["uri"] == "s3://bucket/reviews/reviews-week1/"
    assert doc["parent"] == {"uri": PARENT.uri, "manifestDigest": PARENT.manifest_digest,
                             "version": "base"}
    assert doc["evaluation"]["replayURIs"] == ["s3://bucket/data/w0.jsonl"]
    assert doc["training"]["earlyStopping"] == {"patience": 1}
    assert doc["lineage"]["labels"] == ["negative", "positive"]


def test_training_job_is_owned_locked_down_and_passes_scheduling_through() -> None:
    spec = WarmStartJobSpec.model_validate(WSJ["spec"])
    job = builders.training_job(WSJ, spec, "reviews", "reviews-s3", OperatorConfig())
    assert job["metadata"]["name"] == "reviews-week1-train"
    owner = job["metadata"]["ownerReferences"][0]
    assert owner["uid"] == "uid-1" and owner["controller"] is True
    assert job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "team-a-queue"
    pod = job["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["nodeSelector"] == {"pool": "gpu"}
    assert pod["priorityClassName"] == "batch"
    container = pod["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert container["envFrom"] == [{"secretRef": {"name": "reviews-s3"}}]
    # Secrets by reference only: no credential value anywhere in the Job.
    assert "AWS_SECRET_ACCESS_KEY" not in str(job)
    assert job["spec"]["podFailurePolicy"]["rules"][0]["onExitCodes"]["values"] == [2, 3]


def test_serving_patch_touches_only_model_fields() -> None:
    body = builders.serving_patch("server", "model", "URI_ENV", "DIGEST_ENV", "v3",
                                  "s3://b/v3/", "sha256:" + "b" * 64)
    container = body["spec"]["template"]["spec"]["containers"][0]
    assert set(container) == {"name", "env"}
    assert set(body["spec"]) == {"template"}
    assert body["spec"]["template"]["metadata"]["annotations"] == {
        "warmstart.dev/model-version": "v3"}


# -- status index ------------------------------------------------------------------------

def version(name: str, phase: VersionPhase = VersionPhase.PROMOTED) -> LineageVersion:
    return LineageVersion(name=name, uri=f"s3://b/{name}/", manifest_digest="sha256:" + "c" * 64,
                          phase=phase)


def test_resolve_parent_roles_and_names() -> None:
    status = ModelLineageStatus(versions=[version("base"), version("v1"), version("v2")],
                                serving_version="v1", latest_version="v2")
    assert lineage_index.resolve_parent(ParentReference(version="serving"), status).version == "v1"
    assert lineage_index.resolve_parent(ParentReference(version="latest"), status).version == "v2"
    assert lineage_index.resolve_parent(ParentReference(version="base"), status).version == "base"
    with pytest.raises(lineage_index.ParentUnresolved) as err:
        lineage_index.resolve_parent(ParentReference(version="v9"), status)
    assert err.value.reason == "ParentNotFound"
    only_base = ModelLineageStatus(versions=[version("base")])
    assert lineage_index.resolve_parent(ParentReference(version="serving"),
                                        only_base).version == "base"
    with pytest.raises(lineage_index.ParentUnresolved) as err:
        lineage_index.resolve_parent(ParentReference(version="serving"), ModelLineageStatus())
    assert err.value.reason == "NoServingVersion"
    retired = ModelLineageStatus(versions=[version("v0", VersionPhase.RETIRED)])
    with pytest.raises(lineage_index.ParentUnresolved):
        lineage_index.resolve_parent(ParentReference(version="v0"), retired)


def test_uri_parent_is_named_after_the_lineage_version_it_is() -> None:
    known = version("v1").model_copy(update={"manifest_digest": "sha256:" + "d" * 64})
    status = ModelLineageStatus(versions=[version("base"), known])
    same = ParentReference(uri="s3://copy/of/v1/", digest="sha256:" + "d" * 64)
    choice = lineage_index.resolve_parent(same, status)
    assert (choice.version, choice.uri) == ("v1", "s3://copy/of/v1/")
    other = ParentReference(uri="s3://elsewhere/m", digest="sha256:" + "e" * 64)
    choice = lineage_index.resolve_parent(other, status)
    assert (choice.version, choice.uri) == ("external", "s3://elsewhere/m/")


def test_upsert_is_idempotent_and_bounded() -> None:
    status = ModelLineageStatus()
    assert lineage_index.upsert(status, version("v1"))
    assert not lineage_index.upsert(status, version("v1"))
    assert status.version_count == 1 and status.latest_version == "v1"
    for i in range(2, 103):
        lineage_index.upsert(status, version(f"v{i}"))
    assert status.versions is not None and len(status.versions) == 100
    assert status.versions[-1].name == "v102"


def test_metrics_come_from_the_manifest_holdout() -> None:
    manifest = record.Manifest(
        version="v1", lineage="reviews", task="sequence-classification",
        labels=("a", "b"), parent=None, files=(),
        metrics={"holdout": {"candidate": {"accuracy": 0.9, "f1": 0.8, "loss": 0.3,
                                           "examples": 40}, "parent": None}})
    values = lineage_index.holdout_metrics(manifest, "candidate")
    assert values == MetricValues(accuracy=0.9, f1=0.8, loss=0.3, samples=40)
    assert lineage_index.holdout_metrics(manifest, "parent") is None


# -- children ----------------------------------------------------------------------------

def test_job_outcome_and_termination_reason() -> None:
    assert job_outcome({"status": {}}) == ("running", "")
    assert job_outcome({"status": {"conditions": [
        {"type": "Complete", "status": "True"}]}}) == ("complete", "")
    assert job_outcome({"status": {"conditions": [
        {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]}}) == (
        "failed", "BackoffLimitExceeded")
    pods = [
        {"status": {"containerStatuses": [{"state": {"terminated": {
            "exitCode": 1, "finishedAt": "2026-01-01T00:00:01Z", "message": "old"}}}]}},
        {"status": {"containerStatuses": [{"state": {"terminated": {
            "exitCode": 2, "finishedAt": "2026-01-01T00:00:09Z",
            "message": "dataset.trainURI: row 3: unknown label"}}}]}},
    ]
    assert termination_reason(pods) == "exit code 2: dataset.trainURI: row 3: unknown label"


def deployment(generation: int, **status: Any) -> dict[str, Any]:
    return {"metadata": {"generation": generation}, "spec": {"replicas": 2,
            "template": {"metadata": {"annotations": {"warmstart.dev/model-version": "v2"}}}},
            "status": status}


def test_rollout_state() -> None:
    assert rollout_state(deployment(3, observedGeneration=3, replicas=2, updatedReplicas=2,
                                    availableReplicas=2)) == "complete"
    assert rollout_state(deployment(3, observedGeneration=2, replicas=2, updatedReplicas=2,
                                    availableReplicas=2)) == "progressing"
    assert rollout_state(deployment(3, observedGeneration=3, replicas=3, updatedReplicas=1,
                                    availableReplicas=2, unavailableReplicas=1)) == "progressing"
    stuck = [{"type": "Progressing", "reason": "ProgressDeadlineExceeded"}]
    assert rollout_state(deployment(3, observedGeneration=3, conditions=stuck)) == "failed"
    # Status of the previous template (not yet observed): its failure is not this one's.
    assert rollout_state(deployment(4, observedGeneration=3, conditions=stuck)) == "progressing"
    assert applied_version(deployment(1)) == "v2"


def test_due_tick_collapses_missed_runs() -> None:
    created = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    at = dt.datetime(2026, 11, 27, 10, 0, tzinfo=dt.UTC)  # a Friday
    tick = due_tick("0 3 * * 1", None, None, created, at)
    assert tick == dt.datetime(2026, 11, 23, 3, 0, tzinfo=dt.UTC)
    assert due_tick("0 3 * * 1", None, tick, created, at) is None
    assert due_tick("0 3 * * 1", None, None, at, at) is None
    berlin = due_tick("0 3 * * *", "Europe/Berlin", None, created, at)
    assert berlin == dt.datetime(2026, 11, 27, 2, 0, tzinfo=dt.UTC)


def test_config_from_env() -> None:
    config = OperatorConfig.from_env({"WARMSTART_MAX_ACTIVE_PER_LINEAGE": "2",
                                      "WARMSTART_TRAINER_COMMAND": "python -m trainer"})
    assert config.max_active_per_lineage == 2
    assert config.trainer_command == ("python", "-m", "trainer")
    with pytest.raises(ConfigError, match="WARMSTART_POLL_SECONDS"):
        OperatorConfig.from_env({"WARMSTART_POLL_SECONDS": "soon"})
    grace = OperatorConfig.from_env({"WARMSTART_IMAGE_PULL_GRACE_SECONDS": "15"})
    assert grace.image_pull_grace_seconds == 15.0
    assert OperatorConfig.from_env({}).image_pull_grace_seconds == 120.0
    with pytest.raises(ConfigError, match="WARMSTART_IMAGE_PULL_GRACE_SECONDS"):
        OperatorConfig.from_env({"WARMSTART_IMAGE_PULL_GRACE_SECONDS": "-1"})


def test_a_cold_start_is_indexed_with_what_it_was_compared_with_not_as_a_child() -> None:
    cold = record.Manifest(
        version="week2-cold", lineage="reviews", task="sequence-classification",
        labels=("negative", "positive"), parent=None,
        compared_with=record.ParentRef("week1", "s3://b/week1/", "sha256:" + "c" * 64),
        files=(record.FileEntry("model.safetensors", "sha256:" + "b" * 64, 10),),
        metrics={}, training={})
    entry = lineage_index.entry_from_manifest("week2-cold", "s3://b/week2-cold/", "sha256:x",
                                              cold, VersionPhase.CANDIDATE, None, None)
    assert entry.parent is None
    assert entry.compared_with == "week1"
