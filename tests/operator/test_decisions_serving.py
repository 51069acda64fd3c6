"""Serving decisions against the in-memory cluster: rollouts that land or time out, pins,
someone else's edits, a missing Deployment (the state machine's table:
docs/serving-state-machine.md)."""

from __future__ import annotations

from tests.operator.harness import NS, Harness, make_lineage, serving_lineage, train


def test_promotion_rolls_out_and_completes() -> None:
    h = serving_lineage()
    train(h, "week1")
    assert h.deployed() == "week1"
    progressing = h.condition("Progressing")
    assert progressing["status"] == "True" and progressing["reason"] == "RollingOut"
    assert h.status()["servingVersion"] == "base"
    h.make_available()
    status = h.status()
    assert status["servingVersion"] == "week1" and status["previousVersion"] == "base"
    assert h.condition("Ready")["status"] == "True"
    assert h.kube.events_of("reviews")[-2:] == ["RollingOut", "RolloutComplete"]


def test_a_rollout_past_its_deadline_rolls_back_to_what_served() -> None:
    h = serving_lineage(deadline=30)
    train(h, "week1")
    h.run_for(29)
    assert h.deployed() == "week1"
    h.run_for(5)
    assert h.deployed() == "base"
    assert h.version("week1")["phase"] == "RolledBack"
    assert h.condition("Progressing")["reason"] == "RollingBack"
    h.make_available()
    status = h.status()
    assert status["servingVersion"] == "base" and status["desiredVersion"] == "base"
    degraded = h.condition("Degraded")
    assert degraded["status"] == "True" and "rolled back to base" in degraded["message"]
    h.run_for(600)
    assert h.deployed() == "base"  # never retried


def test_a_rejected_candidate_leaves_serving_alone() -> None:
    h = serving_lineage()
    train(h, "bad", accuracy=0.1, parent_accuracy=0.8)
    assert h.phase("bad") == "Rejected"
    assert h.deployed() == "base"
    assert h.condition("Progressing")["status"] == "False"


def test_pin_and_unpin() -> None:
    h = serving_lineage()
    train(h, "week1")
    h.make_available()
    h.edit_lineage(pinnedVersion="base")
    assert h.deployed() == "base"
    h.make_available()
    assert h.status()["servingVersion"] == "base"
    h.edit_lineage(pinnedVersion=None)
    assert h.deployed() == "week1"
    h.make_available()
    assert h.status()["servingVersion"] == "week1"


def test_a_pin_to_an_unknown_version_degrades_and_leaves_serving() -> None:
    h = serving_lineage()
    h.edit_lineage(pinnedVersion="nope")
    assert h.condition("Degraded")["reason"] == "PinnedVersionNotFound"
    assert h.deployed() == "base"
    h.edit_lineage(pinnedVersion=None)
    assert h.condition("Degraded")["status"] == "False"


def test_a_deployment_changed_by_someone_else_is_put_back() -> None:
    h = serving_lineage()
    h.kube.update("Deployment", NS, "srv", lambda o: o["spec"]["template"]["metadata"][
        "annotations"].update({"warmstart.dev/model-version": "other"}))
    h.run_for(600)  # the lineage's safety-net look
    assert h.deployed() == "base"


def test_a_missing_deployment_or_container_is_said() -> None:
    h = Harness()
    h.create(make_lineage().serving().obj())
    assert h.condition("Ready")["reason"] == "DeploymentNotFound"
    h.add_deployment(container="other")
    h.run_for(31)
    assert h.condition("Ready")["reason"] == "ContainerNotFound"


def test_a_base_without_a_head_is_not_served() -> None:
    h = Harness(base_head=False)
    h.add_deployment()
    h.create(make_lineage().serving().obj())
    assert h.condition("Ready")["reason"] == "NoVersionServing"
    assert h.deployed() is None


