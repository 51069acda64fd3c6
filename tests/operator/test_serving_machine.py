"""The serving state machine (issue 17), model-based: hypothesis drives random sequences of
promotions, pins, unpins, available rollouts, passed deadlines, someone else's edits of the
Deployment, its deletion, and operator restarts (also between a status write and the
Deployment patch) through the real controller over the in-memory cluster, and checks the
invariants and a reference model after every step."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from tests.operator.fakecluster import deployment
from tests.operator.harness import NS, Harness, make_lineage, make_wsj
from warmstart_operator.controller import Controller
from warmstart_operator.lineageflow import lineage_key

DEADLINE = 30
STEPS = 15  # rules per sequence


def start() -> Harness:
    h = Harness()
    h.add_deployment()
    # Retention (keep 10 by default) would retire old versions, a RolledBack one included,
    # once a sequence records more; it has its own tests, and this model does not model it.
    h.create(make_lineage().serving(deadline=DEADLINE).keep(STEPS + 1).obj())
    h.make_available()
    return h


def restart(h: Harness) -> None:
    """A new operator process over the same cluster: empty queue, everything re-listed."""
    h.controller = Controller(h.kube, h.config, h.metrics, h.kube.jobs_of, h.kube.claimants,
                              clock=h.clock, store_factory=lambda _: h.store)
    for (kind, _, _), obj in list(h.kube.objects.items()):
        h._route(kind, None, obj)  # type: ignore[arg-type]
    h.settle()


class Model:
    """What should serve, by the rules of docs/serving-state-machine.md, kept apart from
    the operator's code."""

    def __init__(self) -> None:
        self.serving = "base"
        self.deployed = "base"
        self.desired = "base"
        self.pinned: str | None = None
        self.versions = ["base"]
        self.failed: set[str] = set()
        self.rolling = False
        self.rollback = False

    def target(self) -> str:
        if self.pinned:
            return self.serving if self.pinned in self.failed else self.pinned
        return self.serving if self.desired in self.failed else self.desired

    def inputs_changed(self) -> None:
        if self.target() != self.deployed:
            self.deployed, self.rolling, self.rollback = self.target(), True, False

    def available(self) -> None:
        if self.rolling and not self.rollback:
            self.serving = self.deployed
        self.rolling = False

    def deadline(self) -> None:
        if not self.rolling:
            return
        if self.rollback or self.deployed == self.serving:
            self.rolling = False  # a failed rollback (or re-assert) is left as it is
            return
        self.failed.add(self.deployed)
        if self.desired == self.deployed:
            self.desired = self.serving
        self.deployed, self.rollback = self.serving, True


class ServingMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.h = start()
        self.m = Model()
        self.n = 0

    def _train(self, promotion: str) -> str:
        self.n += 1
        name = f"v{self.n}"
        self.h.create(make_wsj(name).promotion(promotion).obj())
        self.h.finish_training(name, 0.5 + self.n / 1000, 0.5)
        assert self.h.phase(name) == "Succeeded", self.h.wsj(name)["status"]
        self.m.versions.append(name)
        return name

    @rule()
    def promote_a_passing_candidate(self) -> None:
        self.m.desired = self._train("Auto")
        self.m.inputs_changed()

    @rule()
    def record_a_manual_candidate(self) -> None:
        self._train("Manual")

    @rule(data=st.data(), crash=st.booleans())
    def pin(self, data: st.DataObject, crash: bool) -> None:
        version = data.draw(st.sampled_from(self.m.versions))
        if crash:  # the operator dies between the status write and the Deployment patch
            self.h.kube.fail_next["apply_deployment"] = RuntimeError("killed")
        self.h.edit_lineage(pinnedVersion=version)
        self.h.run_for(1)
        self.h.kube.fail_next.pop("apply_deployment", None)
        self.m.pinned = version
        self.m.inputs_changed()

    @rule()
    def unpin(self) -> None:
        self.h.edit_lineage(pinnedVersion=None)
        self.m.pinned = None
        self.m.inputs_changed()

    @rule()
    def rollout_available(self) -> None:
        self.h.make_available()
        self.m.available()

    @rule()
    def deadline_passes(self) -> None:
        self.h.run_for(DEADLINE + 5)
        self.m.deadline()

    @precondition(lambda self: not self.m.rolling)
    @rule(data=st.data(), delete=st.booleans())
    def someone_else_changes_the_deployment(self, data: st.DataObject, delete: bool) -> None:
        other = None
        if delete:
            self.h.kube.remove("Deployment", NS, "srv")
            self.h.kube.put("Deployment", deployment(NS, "srv"))
        else:
            other = data.draw(st.sampled_from(self.m.versions))

            def edit(obj: dict[str, Any]) -> None:
                annotations = obj["spec"]["template"]["metadata"].setdefault("annotations", {})
                annotations["warmstart.dev/model-version"] = other

            self.h.kube.update("Deployment", NS, "srv", edit)
        # The lineage's next look (its safety net, or a watch of the Deployment).
        self.h.controller.queue.add(lineage_key(NS, "reviews"))
        self.h.settle()
        if delete or other != self.m.deployed:
            self.m.rolling, self.m.rollback = True, False

    @rule()
    def operator_restarts(self) -> None:
        restart(self.h)

    # -- invariants ------------------------------------------------------------------------
    @invariant()
    def deployment_runs_a_recorded_version(self) -> None:
        applied = self.h.deployed()
        versions = {v["name"]: v for v in self.h.status().get("versions") or []}
        assert applied in versions and versions[applied]["phase"] != "Retired"

    @invariant()
    def matches_the_model(self) -> None:
        status = self.h.status()
        assert self.h.deployed() == self.m.deployed, (self.h.kube.events, vars(self.m))
        assert status.get("servingVersion") == self.m.serving
        progressing = self.h.condition("Progressing")
        assert (progressing["status"] == "True") == self.m.rolling, progressing
        rolled_back = {v["name"] for v in status["versions"] if v["phase"] == "RolledBack"}
        assert rolled_back == self.m.failed

    @invariant()
    def conditions_and_events_tell_the_truth(self) -> None:
        status = self.h.status()
        degraded = self.h.condition("Degraded") if any(
            c["type"] == "Degraded" for c in status.get("conditions") or []) else None
        if degraded and degraded["status"] == "True" and degraded["reason"] == "RolledBack" \
                and not self.m.rolling:
            assert degraded["message"].endswith(f"rolled back to {status['servingVersion']}")
        notes = [e["note"] for e in self.h.kube.events if e["reason"] == "RolledBack"]
        if notes and self.m.rollback:
            assert notes[-1].endswith(f"rolling back to {self.m.serving}")


ServingMachine.TestCase.settings = settings(
    max_examples=200, stateful_step_count=STEPS, deadline=None,
    suppress_health_check=[HealthCheck.too_slow])
test_serving_machine = ServingMachine.TestCase


def test_issue_17_a_rollback_returns_to_what_served_and_stays() -> None:
    """week1 pinned and serving, week2 promoted earlier; pin a version that never becomes
    available: back to week1 (not week2), said truthfully, and no second rollout."""
    h = start()
    for name in ("week1", "week2"):
        h.create(make_wsj(name).obj())
        h.finish_training(name, 0.9 if name == "week1" else 0.95, 0.5)
        h.make_available()
    h.create(make_wsj("week2-cold").promotion("Manual").obj())
    h.finish_training("week2-cold", 0.96, 0.5)
    h.edit_lineage(pinnedVersion="week1")
    h.make_available()
    assert h.status()["servingVersion"] == "week1"
    assert h.status()["desiredVersion"] == "week2"
    h.edit_lineage(pinnedVersion="week2-cold")
    assert h.deployed() == "week2-cold"
    h.run_for(DEADLINE + 2)
    assert h.deployed() == "week1"
    h.make_available()
    h.run_for(3600)
    assert h.deployed() == "week1"
    status = h.status()
    assert status["servingVersion"] == "week1"
    assert h.condition("Degraded")["message"].endswith("rolled back to week1")
    tail = [e["reason"] for e in h.kube.events if e["regarding"] == "reviews"][-3:]
    assert tail == ["RollingOut", "RolledBack", "RollbackComplete"]
