"""ModelLineage reconcile: base registration, recording finished trainings (and the gate),
the serving rollout and its rollback, the retraining schedule, and retention.

The only writer of a lineage's status: everything is computed on one copy of it and the
controller writes it once, only if it changed.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from pydantic import ValidationError

from warmstart import history, record
from warmstart.api.conditions import (
    LineageConditionType,
    LineageReason,
    find_condition,
    set_condition,
)
from warmstart.api.constants import (
    MODELLINEAGE_KIND,
    ConditionStatus,
    VersionPhase,
)
from warmstart.api.modellineage import ModelLineage, ModelLineageStatus
from warmstart.storage import StorageError
from warmstart_operator import (
    failpoints,
    lineage_index,
    lineagerecovery,
    objectstore,
    registration,
    schedule,
    serving,
    servinghistory,
    signatures,
    trust,
)
from warmstart_operator.cluster import Cluster
from warmstart_operator.config import OperatorConfig
from warmstart_operator.jobindex import JobsOf
from warmstart_operator.lineagepass import Pass
from warmstart_operator.metrics import Metrics
from warmstart_operator.outcome import Outcome, condition
from warmstart_operator.rollout import applied_version, apply_version, rollout_state
from warmstart_operator.workqueue import Key

log = logging.getLogger("warmstart.lineages")

INVALID_SPEC = "InvalidSpec"

# Degraded reasons this reconcile re-checks every time: gone when the problem is.
_RECHECKED = {LineageReason.BASE_UNVERIFIED, LineageReason.STORAGE_SECRET_NOT_FOUND,
              LineageReason.PINNED_VERSION_NOT_FOUND, "PermissionDenied", INVALID_SPEC,
              LineageReason.STORAGE_UNREACHABLE, *trust.LINEAGE_REFUSALS,
              *signatures.REFUSAL_REASONS}
_MACHINE_OWNED = {serving.ROLLED_BACK, serving.ROLLOUT_TIMED_OUT, serving.ROLLBACK_FAILED}


class LineageReconciler:
    def __init__(self, kube: Cluster, config: OperatorConfig, metrics: Metrics,
                 jobs_of: JobsOf, stores: objectstore.StoreCache,
                 claimants: trust.ClaimantsIn) -> None:
        self.kube = kube
        self.config = config
        self.metrics = metrics
        self.jobs_of = jobs_of
        self.stores = stores
        self.claimants = claimants

    def reconcile(self, key: Key, now: dt.datetime) -> Outcome:
        obj = self.kube.get_lineage(key.namespace, key.name)
        if obj is None or obj["metadata"].get("deletionTimestamp"):
            return Outcome(None)
        try:
            lineage = ModelLineage.model_validate(obj)
        except ValidationError as exc:
            return self._invalid(obj, trust.first_error(exc), now)
        before = lineage.status or ModelLineageStatus()
        status = before.model_copy(deep=True)
        # A reconcile that got this far had the permissions it needed.
        status.conditions = [c for c in status.conditions or []
                             if c.reason != "PermissionDenied"] or None
        out = Outcome(obj)
        # Nothing in flight: events (spec edits, finished trainings) bring it back sooner.
        out.look_again(self.config.poll_seconds * 60)
        p = Pass(lineage, status, out, now, obj["metadata"].get("generation"))
        # Trust boundary: a lineage whose storage prefix another lineage holds touches
        # nothing (trust.storage_claim says which one comes first).
        me = trust.Claimant.of(obj)
        if me and (refusal := trust.storage_claim(me, self.claimants(p.ns))):
            p.degrade(refusal.reason, refusal.message)
            status.observed_generation = p.generation
            out.status = status.to_api()
            return out
        fresh = not before.versions
        self._base(p)
        if fresh and lineage_index.find(status, lineage_index.BASE_VERSION) is not None:
            lineagerecovery.recover(p, self.kube, self.stores)
        self._record(p)
        self._serve(p)
        self._schedule(p)
        schedule.retain(self.stores, p.lineage, p.status, p.out)
        self._clear_rechecked(p, before)
        status.observed_generation = p.generation
        out.status = status.to_api()
        return out

    # -- base -------------------------------------------------------------------------
    def _base(self, p: Pass) -> None:
        if lineage_index.find(p.status, lineage_index.BASE_VERSION) is not None:
            return
        base = p.lineage.spec.base
        try:
            store = self.stores.get(p.ns, p.lineage.spec.storage.secret_ref.name)
            read = objectstore.read_manifest(store, base.uri)
        except objectstore.CredentialsMissing as exc:
            p.degrade(LineageReason.STORAGE_SECRET_NOT_FOUND, str(exc))
            return
        except (StorageError, record.RecordError) as exc:
            p.degrade(LineageReason.BASE_UNVERIFIED,
                      f"cannot read the base manifest at {base.uri}: {exc}")
            return
        if base.digest and read.digest != base.digest:
            p.degrade(LineageReason.BASE_UNVERIFIED, f"base manifest hashes to {read.digest}, "
                      f"spec.base.digest pins {base.digest}")
            return
        try:
            signatures.verify_version(store, p.lineage.spec, None, base.uri, read.raw)
        except signatures.SignatureRefused as exc:
            p.degrade(exc.reason, f"base at {base.uri}: {exc}")
            return
        except StorageError as exc:
            p.degrade(LineageReason.BASE_UNVERIFIED, f"base at {base.uri}: {exc}")
            return
        entry = lineage_index.entry_from_manifest(
            lineage_index.BASE_VERSION, record.ensure_prefix(base.uri), read.digest,
            read.manifest, VersionPhase.PROMOTED, "Base: version 0 of the lineage", None)
        # A base without a classification head for these labels (a pretrained encoder) is
        # a starting point, not something to serve.
        if lineage_index.upsert(p.status, entry) and read.manifest.has_trained_head and \
                not p.status.desired_version:
            p.status.desired_version = lineage_index.BASE_VERSION
        p.out.event("BaseRegistered", f"Base version registered ({read.digest})")

    # -- finished trainings -----------------------------------------------------------
    def _record(self, p: Pass) -> None:
        refs = [r for r in self.jobs_of(p.ns, p.name) if r.registering]
        if not refs:
            return
        try:
            store = self.stores.get(p.ns, p.lineage.spec.storage.secret_ref.name)
        except objectstore.CredentialsMissing as exc:
            p.degrade(LineageReason.STORAGE_SECRET_NOT_FOUND, str(exc))
            return
        for result in registration.record_finished(p.lineage, p.status, refs, store):
            if isinstance(result, registration.NotRecorded):
                p.out.event("VersionNotRecorded", f"{result.job}: {result.message}",
                            warning=True)
                p.out.look_again(self.config.poll_seconds * 6)
                continue
            p.out.after_write.append(
                lambda: failpoints.crash_point(failpoints.AFTER_VERSION_REGISTERED))
            version = result.entry.name
            labels = {"namespace": p.ns, "lineage": p.name}
            self.metrics.versions_registered.labels(**labels).inc()
            p.out.event("VersionRegistered", f"Version {version} recorded "
                        f"({result.entry.manifest_digest}): {result.entry.reason}")
            if not result.verdict.passed:
                self.metrics.gate_rejections.labels(**labels).inc()
            elif result.promoted:
                self.metrics.promotions.labels(**labels).inc()

    # -- serving ----------------------------------------------------------------------
    def _serve(self, p: Pass) -> None:
        spec = p.lineage.spec
        target = spec.serving
        if target is None:
            desired = spec.pinned_version or p.status.desired_version
            if desired:
                p.status.serving_version = desired
            if not p.degraded:
                p.set(LineageConditionType.READY, True, LineageReason.NO_SERVING_CONFIGURED,
                      "no serving Deployment configured: the lineage is a registry")
            return
        refusal = trust.serving_env_names(target.model_uri_env, target.model_digest_env)
        deployment = self.kube.get_deployment(p.ns, target.deployment_ref.name)
        if deployment is not None:
            # Trust boundary: never patch a Deployment that has not opted in to this lineage.
            refusal = refusal or trust.deployment_opt_in(
                target.deployment_ref.name, deployment["metadata"].get("labels"), p.name, p.ns)
        if refusal:
            p.degrade(refusal.reason, refusal.message)
            p.out.look_again(self.config.poll_seconds * 6)
            return
        observed = None
        if deployment is None:
            missing = (LineageReason.DEPLOYMENT_NOT_FOUND,
                       f'Deployment "{target.deployment_ref.name}" not found in {p.ns}')
        elif not any(c.get("name") == target.container
                     for c in deployment["spec"]["template"]["spec"].get("containers") or []):
            missing = (LineageReason.CONTAINER_NOT_FOUND,
                       f'Deployment "{target.deployment_ref.name}" has no container '
                       f'"{target.container}"')
        else:
            missing = None
            observed = serving.Observed(applied_version(deployment), rollout_state(deployment))
        state = read_state(p.status)
        decision = serving.transition(state, serving.Inputs(
            pinned=spec.pinned_version,
            record={v.name: v.phase for v in p.status.versions or []},
            deployment=observed, deadline_seconds=target.progress_deadline_seconds,
            generation=p.generation, now=p.now))
        if missing is not None and decision.degraded is None:
            if not p.degraded:
                p.set(LineageConditionType.READY, False, *missing)
            p.out.look_again(self.config.poll_seconds * 6)
            return
        if decision.apply is not None and (refusal := self._unverified(p, decision.apply)):
            # Never point the Deployment at a version whose signature does not hold now:
            # the machine's state stays as it was until the version verifies or changes.
            p.degrade(refusal.reason, refusal.message)
            p.out.look_again(self.config.poll_seconds * 6)
            return
        if decision.now_serving is not None and not self._log_serving(p, decision.now_serving):
            return
        self._write_decision(p, state, decision)
        if decision.apply is not None:
            entry = lineage_index.find(p.status, decision.apply)
            assert entry is not None and entry.manifest_digest
            p.out.after_write.append(apply_version(
                self.kube, p.ns, target, entry, self.config.field_manager,
                signatures.serving_env(p.lineage.spec)))

    def _write_decision(self, p: Pass, before: serving.ServingState,
                        decision: serving.Decision) -> None:
        s, new = p.status, decision.state
        s.serving_version, s.previous_version = new.serving, new.previous
        s.desired_version = new.desired
        for version, (phase, reason) in decision.marks.items():
            lineage_index.set_phase(s, version, phase, reason)
        if decision.progressing is not None:
            ok, reason, message = decision.progressing
            if ok and new.rollout is not None and new.rollout != before.rollout:
                # Each rollout's deadline counts from its own start: drop the old one's.
                s.conditions = [c for c in s.conditions or []
                                if c.type != LineageConditionType.PROGRESSING]
            p.set(LineageConditionType.PROGRESSING, ok, reason, message)
        if decision.degraded is not None:
            ok, reason, message = decision.degraded
            p.set(LineageConditionType.DEGRADED, ok, reason, message)
            p.degraded = p.degraded or ok
        if decision.ready is not None and not (p.degraded and decision.ready[0]):
            p.set(LineageConditionType.READY, *decision.ready)
        for reason, message, warning in decision.events:
            p.out.event(reason, message, warning)
        p.out.look_again(decision.requeue_after)
        labels = {"namespace": p.ns, "lineage": p.name}
        if decision.rolled_back:
            self.metrics.rollbacks.labels(**labels).inc()
        if decision.now_serving is not None:
            self._now_serving(p, before.serving, decision.now_serving)

    def _unverified(self, p: Pass, version: str) -> trust.Refusal | None:
        """A refusal when a lineage that signs may not roll out `version`: its
        signature is checked on the bytes in storage now, so a manifest or signature swapped
        after it was recorded is caught before any pod is pointed at it."""
        if p.lineage.spec.signing is None:
            return None
        entry = lineage_index.find(p.status, version)
        assert entry is not None
        try:
            store = self.stores.get(p.ns, p.lineage.spec.storage.secret_ref.name)
            signatures.verify_version(store, p.lineage.spec, None, entry.uri)
        except signatures.SignatureRefused as exc:
            return trust.Refusal(exc.reason, f"not rolling out {version}: {exc}")
        except (objectstore.CredentialsMissing, StorageError) as exc:
            return trust.Refusal(LineageReason.STORAGE_UNREACHABLE,
                                 f"not rolling out {version}: {exc}")
        return None

    def _log_serving(self, p: Pass, version: str) -> bool:
        """Appends the change of what serves to the serving history BEFORE the status shows
        it; False (the decision is not written, the next look tries again) when storage
        cannot take it, so the status never shows a change the log misses."""
        try:
            store = self.stores.get(p.ns, p.lineage.spec.storage.secret_ref.name)
            head = servinghistory.record_serving(store, p.lineage, p.status, version, p.now)
        except history.HistoryError as exc:
            p.degrade(servinghistory.HISTORY_TAMPERED, f"serving history: {exc}")
            return True  # serving did change: a broken log must not hide that
        except (objectstore.CredentialsMissing, StorageError) as exc:
            p.degrade(LineageReason.STORAGE_UNREACHABLE,
                      f"{version} serves, not yet in the serving history: {exc}")
            p.out.look_again(self.config.poll_seconds)
            return False
        p.status.history_head = head
        return True

    def _now_serving(self, p: Pass, was: str | None, version: str) -> None:
        """The one place what serves changes (the history entry was appended before, by
        _log_serving, so that storage can veto the status write)."""
        if was:
            self.metrics.serving_info.labels(namespace=p.ns, lineage=p.name,
                                             version=was).set(0)
        self.metrics.serving_info.labels(namespace=p.ns, lineage=p.name, version=version).set(1)

    def _schedule(self, p: Pass) -> None:
        retraining = p.lineage.spec.retraining
        if retraining is not None and not retraining.suspend and (refusal := trust.schedule(
                retraining.schedule, retraining.time_zone, p.now)):
            p.degrade(refusal.reason, refusal.message)
            return
        schedule.run(self.kube, p.lineage, p.status, p.out, self.jobs_of(p.ns, p.name), p.now)

    def _invalid(self, obj: dict[str, Any], problem: str, now: dt.datetime) -> Outcome:
        """A lineage the current models refuse (stored under an older, laxer CRD): Degraded
        with the field named, not an exception in every reconcile."""
        try:
            status = ModelLineageStatus.model_validate(obj.get("status") or {})
        except ValidationError:
            status = ModelLineageStatus()
        generation = obj["metadata"].get("generation")
        out = Outcome(obj)
        for kind in (LineageConditionType.DEGRADED, LineageConditionType.READY):
            status.conditions = set_condition(status.conditions or [], condition(
                kind, kind == LineageConditionType.DEGRADED, INVALID_SPEC, problem,
                generation, now))
        status.observed_generation = generation
        out.status = status.to_api()
        out.event(INVALID_SPEC, problem, warning=True)
        return out

    def _clear_rechecked(self, p: Pass, before: ModelLineageStatus) -> None:
        degraded = find_condition(p.status.conditions or [], LineageConditionType.DEGRADED)
        if degraded is None or degraded.status != ConditionStatus.TRUE or p.degraded:
            return
        if degraded.reason in _RECHECKED:
            p.set(LineageConditionType.DEGRADED, False, LineageReason.RECONCILED,
                  "nothing is degraded")


def read_state(status: ModelLineageStatus) -> serving.ServingState:
    """The machine's state as the status records it."""
    conditions = status.conditions or []
    progressing = find_condition(conditions, LineageConditionType.PROGRESSING)
    rollout = None
    if progressing is not None and progressing.status == ConditionStatus.TRUE and \
            progressing.reason in (serving.ROLLING_OUT, serving.ROLLING_BACK):
        rollout = serving.Rollout(progressing.last_transition_time,
                                  rollback=progressing.reason == serving.ROLLING_BACK)
    degraded = find_condition(conditions, LineageConditionType.DEGRADED)
    rolled_back_at = None
    if degraded is not None and degraded.status == ConditionStatus.TRUE and \
            degraded.reason in _MACHINE_OWNED:
        rolled_back_at = degraded.observed_generation or 0
    return serving.ServingState(serving=status.serving_version, previous=status.previous_version,
                                desired=status.desired_version, rollout=rollout,
                                rolled_back_at_generation=rolled_back_at)


def lineage_key(namespace: str, name: str) -> Key:
    return Key(MODELLINEAGE_KIND, namespace, name)


