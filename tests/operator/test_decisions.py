"""The reconcilers' decisions against the in-memory cluster and a fake clock: every job
phase, every gate outcome, rollouts that land or time out, the queue, suspend, pin,
recovery and the bad-input cases (Kueue's table-driven controller tests are the model)."""

from __future__ import annotations

import pytest

from tests.operator.harness import (
    NS,
    STORAGE,
    Harness,
    make_lineage,
    make_wsj,
    manifest,
    serving_lineage,
    train,
)
from warmstart import record
from warmstart_operator.workqueue import Key


def registry() -> Harness:
    """A lineage without serving whose base (with a head) is registered."""
    h = Harness()
    h.create(make_lineage().obj())
    assert h.version("base")["manifestDigest"] == h.base_digest
    return h


# -- job phases -------------------------------------------------------------------------

def test_a_job_walks_pending_training_registering_succeeded() -> None:
    h = registry()
    h.create(make_wsj("week1").obj())
    wsj = h.wsj("week1")
    assert wsj["status"]["phase"] == "Training"
    assert wsj["status"]["parent"]["manifestDigest"] == h.base_digest
    assert h.kube.get_job(NS, "week1-train") is not None
    digest = h.finish_training("week1")
    assert h.phase("week1") == "Succeeded"
    assert h.wsj("week1")["status"]["output"]["manifestDigest"] == digest
    assert h.version("week1")["phase"] == "Promoted"
    assert h.status()["servingVersion"] == "week1"  # no Deployment: a registry
    # One Event per step a person waits for: the parent is in TrainingStarted's message,
    # the verdict in the last one's.
    assert h.kube.events_of("week1") == ["TrainingStarted", "Promoted"]



def test_a_failed_training_fails_the_job_with_the_jobs_reason() -> None:
    h = registry()
    h.create(make_wsj("week1").obj())
    h.fail_training("week1", "DeadlineExceeded")
    assert h.phase("week1") == "Failed"
    assert h.condition("Failed", h.wsj("week1"))["reason"] == "DeadlineExceeded"


# -- the gate ---------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("accuracy", "parent_accuracy", "policy", "job_phase", "version_phase", "gate"),
    [
        (0.9, 0.8, "Auto", "Succeeded", "Promoted", "GatePassed"),
        (0.9, 0.8, "Manual", "Succeeded", "Candidate", "GatePassed"),
        (0.7, 0.8, "Auto", "Rejected", "Rejected", "InsufficientImprovement"),
        (None, 0.8, "Auto", "Rejected", "Rejected", "MetricMissing"),
    ],
)
def test_gate_outcomes(accuracy: float | None, parent_accuracy: float, policy: str,
                       job_phase: str, version_phase: str, gate: str) -> None:
    h = Harness()
    h.create(make_lineage().policy(policy).obj())
    h.create(make_wsj("week1").obj())
    h.finish_training("week1", accuracy, parent_accuracy)
    assert h.phase("week1") == job_phase
    assert h.version("week1")["phase"] == version_phase
    assert h.condition("GatePassed", h.wsj("week1"))["reason"] == gate
    promoted = version_phase == "Promoted"
    assert h.status().get("desiredVersion") == ("week1" if promoted else "base")


def test_below_min_value_and_replay_regression_reject() -> None:
    h = Harness()
    lineage = make_lineage().obj()
    lineage["spec"]["promotion"].update(minValue=0.95)
    h.create(lineage)
    h.create(make_wsj("low").obj())
    h.finish_training("low", 0.9, 0.5)
    assert h.condition("GatePassed", h.wsj("low"))["reason"] == "BelowMinValue"
    h.edit_lineage(promotion={"metric": "accuracy", "maxReplayRegression": 0.01,
                              "policy": "Auto"})
    h.create(make_wsj("forgot").obj())
    h.finish_training("forgot", 0.9, 0.5, replay=[
        {"uri": "s3://bucket/data/old.jsonl", "candidate": {"accuracy": 0.5},
         "parent": {"accuracy": 0.9}}])
    assert h.condition("GatePassed", h.wsj("forgot"))["reason"] == "ReplayRegression"


def test_job_promotion_never_keeps_the_version_a_candidate() -> None:
    h = registry()
    h.create(make_wsj("week1").promotion("Never").obj())
    h.finish_training("week1")
    assert h.version("week1")["phase"] == "Candidate"
    assert h.condition("Promoted", h.wsj("week1"))["reason"] == "PromotionDisabled"


def test_a_version_is_recorded_once_and_a_name_clash_fails_the_job() -> None:
    h = registry()
    h.create(make_wsj("week1").obj())
    h.finish_training("week1")
    h.run_for(120)
    assert [v["name"] for v in h.status()["versions"]] == ["base", "week1"]
    assert h.status()["versionCount"] == 2
    # A new job of the same name (the first deleted) whose output differs.
    h.kube.remove("WarmStartJob", NS, "week1")
    h.kube.remove("Job", NS, "week1-train")
    h.create(make_wsj("week1").parent("base").obj())
    h.finish_training("week1", 0.95, 0.9)
    assert h.phase("week1") == "Failed"
    assert h.condition("Failed", h.wsj("week1"))["reason"] == "VersionExists"


def test_a_manifest_that_breaks_the_hash_chain_fails_the_job() -> None:
    h = registry()
    h.create(make_wsj("week1").obj())
    raw = manifest("week1", accuracy=0.9, parent=("base", "s3://x/", "sha256:" + "c" * 64))
    h.store.put(record.manifest_uri(record.version_uri(STORAGE, "week1")), raw)
    h._job_condition("week1-train", "Complete", "")
    assert h.phase("week1") == "Failed"
    failed = h.condition("Failed", h.wsj("week1"))
    assert failed["reason"] == "OutputManifestInvalid" and "hash chain" in failed["message"]


# -- the queue and suspend ----------------------------------------------------------------

def test_jobs_of_a_lineage_train_one_at_a_time_in_creation_order() -> None:
    h = registry()
    for i, name in enumerate(("q-1", "q-2", "q-3")):
        h.clock.now += i
        h.create(make_wsj(name).promotion("Manual").obj())
    assert [h.phase(n) for n in ("q-1", "q-2", "q-3")] == ["Training", "Queued", "Queued"]
    h.finish_training("q-1")
    assert [h.phase(n) for n in ("q-1", "q-2", "q-3")] == ["Succeeded", "Training", "Queued"]
    h.fail_training("q-2")
    assert h.phase("q-3") == "Training"
    assert h.kube.events_of("q-2").count("LineageBusy") == 1


def test_two_slots_and_a_deleted_job_frees_its_slot() -> None:
    h = Harness(max_active=2)
    h.create(make_lineage().obj())
    for i, name in enumerate(("a", "b", "c")):
        h.clock.now += i
        h.create(make_wsj(name).obj())
    assert [h.phase(n) for n in "abc"] == ["Training", "Training", "Queued"]
    h.kube.remove("WarmStartJob", NS, "a")
    h.settle()
    assert h.phase("c") == "Training"


def test_suspend_holds_the_job_without_a_slot_and_resume_starts_it() -> None:
    h = registry()
    h.create(make_wsj("s").suspend().obj())
    assert h.phase("s") == "Queued"
    assert h.condition("Complete", h.wsj("s"))["reason"] == "Suspended"
    assert h.kube.get_job(NS, "s-train") is None
    h.create(make_wsj("other").obj())
    assert h.phase("other") == "Training"  # a suspended job holds no slot
    h.finish_training("other")
    h.edit_wsj("s", suspend=False)
    assert h.phase("s") == "Training"
    h.edit_wsj("s", suspend=True)
    job = h.kube.get_job(NS, "s-train")
    assert job is not None and job["spec"]["suspend"] is True
    assert h.phase("s") == "Queued"


def test_waiting_costs_no_reconciles() -> None:
    h = registry()
    for name in ("a", "b", "c", "d"):
        h.create(make_wsj(name).promotion("Manual").obj())
    before = h.reconciles
    h.run_for(3600)
    # Only the training job's safety-net looks (every 30 s) and the lineage's (every 5 min).
    assert h.reconciles - before <= 3600 / 30 + 3600 / 300 + 2


# -- bad input ----------------------------------------------------------------------------

def test_a_missing_lineage_waits_its_grace_then_fails() -> None:
    h = Harness()
    h.create(make_wsj("early").obj())
    assert h.phase("early") == "Pending"
    assert h.condition("ParentResolved", h.wsj("early"))["reason"] == "LineageNotFound"
    h.run_for(40)
    assert h.phase("early") == "Failed"
    assert h.condition("Failed", h.wsj("early"))["reason"] == "LineageNotFound"


def test_a_lineage_created_within_the_grace_is_picked_up() -> None:
    h = Harness()
    h.create(make_wsj("early").obj())
    h.run_for(5)
    h.create(make_lineage().obj())
    assert h.phase("early") == "Training"


@pytest.mark.parametrize(
    ("job", "reason"),
    [
        (make_wsj("j").parent("nope").obj(), "ParentNotFound"),
        (make_wsj("j").parent("latest").train_uri("s3://bucket/data/missing.jsonl").obj(),
         "DatasetNotFound"),
    ],
)
def test_bad_job_input_fails_with_a_reason(job: dict[str, object], reason: str) -> None:
    h = registry()
    h.create(job)
    assert h.phase("j") == "Failed"
    assert h.condition("Failed", h.wsj("j"))["reason"] == reason
    assert h.kube.get_job(NS, "j-train") is None
    assert reason in h.kube.events_of("j")


def test_a_parent_uri_whose_manifest_hashes_otherwise_fails() -> None:
    h = registry()
    job = make_wsj("j").obj()
    job["spec"]["parent"] = {"uri": "s3://bucket/published/base/", "digest": "sha256:" + "0" * 64}
    h.create(job)
    failed = h.condition("Failed", h.wsj("j"))
    assert failed["reason"] == "ParentDigestMismatch"
    assert "expected sha256:000" in failed["message"]
    h.create(make_wsj("k").lineage("nope").obj())
    h.run_for(31)
    failed = h.condition("Failed", h.wsj("k"))
    assert failed["reason"] == "LineageNotFound"
    assert 'ModelLineage "nope" does not exist' in failed["message"]


def test_a_missing_secret_fails_the_job_and_degrades_the_lineage() -> None:
    h = Harness()
    h.create(make_lineage().secret("nope").obj())
    degraded = h.condition("Degraded")
    assert degraded["status"] == "True" and degraded["reason"] == "StorageSecretNotFound"
    h.create(make_wsj("j").obj())
    assert h.phase("j") == "Failed"


def test_a_base_digest_mismatch_degrades_and_a_fixed_spec_recovers() -> None:
    h = Harness()
    h.create(make_lineage().base_digest("sha256:" + "d" * 64).obj())
    assert h.condition("Degraded")["reason"] == "BaseUnverified"
    h.edit_lineage(base={"uri": "s3://bucket/published/base/", "digest": h.base_digest})
    assert h.condition("Degraded")["status"] == "False"
    assert h.version("base")["phase"] == "Promoted"


def test_a_transient_api_error_backs_off_and_shows_in_the_metric() -> None:
    h = registry()
    h.kube.fail_next["create_job"] = RuntimeError("API server unavailable")
    h.create(make_wsj("j").obj())
    assert h.phase("j") == "Pending"
    text = next(iter(h.metrics.reconcile_backoff.collect())).samples
    assert any(s.labels["name"] == "j" and s.value == 0.5 for s in text)
    h.run_for(1)
    assert h.phase("j") == "Training"
    assert not next(iter(h.metrics.reconcile_backoff.collect())).samples


# -- recovery, schedule, retention -------------------------------------------------------

def test_a_recreated_lineage_reindexes_its_versions_and_keeps_serving() -> None:
    h = serving_lineage()
    train(h, "week1")
    h.make_available()
    h.kube.remove("ModelLineage", NS, "reviews")
    h.create(make_lineage().serving().obj())
    status = h.status()
    assert [v["name"] for v in status["versions"]] == ["base", "week1"]
    assert h.version("week1")["phase"] == "Promoted"
    assert status["servingVersion"] == "week1"
    assert h.deployed() == "week1"
    assert "RecoveredFromStorage" in h.kube.events_of("reviews")


def test_schedule_creates_one_job_per_tick_and_forbid_skips() -> None:
    h = Harness()
    h.create(make_lineage().schedule("*/10 * * * *").obj())
    h.run_for(601)
    scheduled = [k[2] for k in h.kube.objects if k[0] == "WarmStartJob"]
    assert len(scheduled) == 1
    h.run_for(600)
    assert len([k for k in h.kube.objects if k[0] == "WarmStartJob"]) == 1
    assert "ScheduleSkipped" in h.kube.events_of("reviews")


def test_retention_deletes_old_weights_and_keeps_manifests() -> None:
    h = Harness()
    h.create(make_lineage().keep(1).policy("Manual").obj())
    for name in ("v1", "v2", "v3"):
        h.create(make_wsj(name).obj())
        h.store.put(record.version_uri(STORAGE, name) + "model.safetensors", b"w")
        h.finish_training(name)
    assert h.version("v1")["phase"] == "Retired" and h.version("v2")["phase"] == "Retired"
    assert h.version("v3")["phase"] == "Candidate"
    assert not h.store.exists(record.version_uri(STORAGE, "v1") + "model.safetensors")
    assert h.store.exists(record.manifest_uri(record.version_uri(STORAGE, "v1")))


def test_api_writes_per_job_stay_small() -> None:
    h = registry()
    before = h.kube.writes
    h.create(make_wsj("j").obj())
    h.finish_training("j")
    h.run_for(300)
    # ConfigMap, Job, status x4, events x4 on the job; the lineage's status + event.
    assert h.kube.writes - before <= 13, h.kube.writes - before


def test_a_lost_status_write_after_the_job_was_created_adopts_it() -> None:
    h = registry()
    h.create(make_wsj("j").obj())  # parent resolved; the next reconcile creates the Job
    h.kube.remove("Job", NS, "j-train")  # as if it had never been created
    h.kube.update("WarmStartJob", NS, "j",
                  lambda o: o["status"].update(jobName=None, phase="Pending"))
    h.kube.fail_next["replace_status"] = RuntimeError("operator killed")
    h.controller.queue.add(Key("WarmStartJob", NS, "j"))
    h.settle()  # the Job is created again (or found), the write fails
    h.run_for(1)
    assert h.phase("j") == "Training"
    assert h.wsj("j")["status"]["jobName"] == "j-train"
    assert [k for k in h.kube.objects if k[0] == "Job"] == [("Job", NS, "j-train")]


# -- a candidate that learned only the class prior ---------------------------------------

def test_a_candidate_predicting_one_class_carries_a_warning_condition() -> None:
    h = registry()
    h.create(make_wsj("flat").obj())
    h.finish_training("flat", majority={"flagged": True, "label": "positive", "share": 0.97})
    warning = h.condition("MajorityClass", h.wsj("flat"))
    assert warning["status"] == "True" and warning["reason"] == "PredictsOneClass"
    assert "'positive' for 97%" in warning["message"]


def test_a_candidate_that_learned_has_no_majority_class_condition() -> None:
    h = registry()
    h.create(make_wsj("fine").obj())
    h.finish_training("fine", majority={"flagged": False, "label": "positive", "share": 0.6})
    conditions = h.wsj("fine")["status"].get("conditions") or []
    assert "MajorityClass" not in {c["type"] for c in conditions}


# -- the parent is stored before the Job exists, in one reconcile --------------------------

def test_one_reconcile_stores_the_parent_then_creates_the_job() -> None:
    h = registry()
    before, writes = h.reconciles, h.kube.writes
    h.create(make_wsj("j").obj())
    assert h.phase("j") == "Training"
    # The creation's reconcile stores the parent and creates the Job (no queue hop and
    # every read again between the two); the second is the one the new Job's event brings.
    assert h.reconciles - before == 2, h.reconciles - before
    # The WarmStartJob itself; status (parent), ConfigMap, Job, status (Training) and
    # TrainingStarted: the same writes as when these were two reconciles.
    assert h.kube.writes - writes == 6, h.kube.writes - writes


def test_a_crash_between_storing_the_parent_and_creating_the_job_resumes_from_it() -> None:
    h = registry()
    h.kube.fail_next["create_job"] = RuntimeError("operator killed")
    h.create(make_wsj("j").obj())
    status = h.wsj("j")["status"]
    assert status["parent"]["manifestDigest"] == h.base_digest
    assert h.kube.get_job(NS, "j-train") is None
    h.run_for(60)  # the back-off passes; the retry creates the Job from the stored parent
    assert h.phase("j") == "Training"
    assert h.wsj("j")["status"]["parent"] == status["parent"]
    assert [k for k in h.kube.objects if k[0] == "Job"] == [("Job", NS, "j-train")]
