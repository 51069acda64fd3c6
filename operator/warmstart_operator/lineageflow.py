"""ModelLineage reconcile: base registration, the serving rollout and its rollback, the
retraining schedule, and retention.

Status writes are small guarded deltas ("if the desired version is still X, then ..."), so
this reconcile and a WarmStartJob registering a version at the same moment never undo each
other's change.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from croniter import croniter

from warmstart import history, record
from warmstart.api.conditions import (
    Condition,
    LineageConditionType,
    LineageReason,
    find_condition,
    set_condition,
)
from warmstart.api.constants import (
    API_VERSION,
    MODELLINEAGE_PLURAL,
    TERMINAL_JOB_PHASES,
    WARMSTARTJOB_KIND,
    ConcurrencyPolicy,
    ConditionStatus,
    VersionPhase,
)
from warmstart.api.modellineage import ModelLineage, ModelLineageStatus
from warmstart.storage import StorageError
from warmstart_operator import (
    builders,
    failpoints,
    lineage_index,
    naming,
    objectstore,
    recovery,
    servinghistory,
    trust,
)
from warmstart_operator.config import OperatorConfig
from warmstart_operator.kube import Kube
from warmstart_operator.metrics import Metrics

log = logging.getLogger("warmstart.lineages")

MODEL_VERSION_ANNOTATION = "warmstart.dev/model-version"
SCHEDULED_BY_LABEL = "warmstart.dev/scheduled-by"


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def cond(kind: str, ok: bool, reason: str, message: str, generation: int | None) -> Condition:
    return Condition(type=kind, status=ConditionStatus.TRUE if ok else ConditionStatus.FALSE,
                     reason=reason, message=message, last_transition_time=now(),
                     observed_generation=generation)


@dataclass
class Plan:
    """Deltas to apply to the fresh status, and events to post afterwards."""

    deltas: list[Callable[[ModelLineageStatus], None]] = field(default_factory=list)
    events: list[tuple[str, str, str]] = field(default_factory=list)
    requeue: float = 10.0
    degraded: bool = False

    def event(self, reason: str, message: str, warning: bool = False) -> None:
        self.events.append(("Warning" if warning else "Normal", reason, message))


def rollout_state(deployment: dict[str, Any]) -> str:
    """complete | progressing | failed, from a Deployment's spec and status."""
    spec, status = deployment.get("spec") or {}, deployment.get("status") or {}
    replicas = int(spec.get("replicas", 1))
    if int(status.get("observedGeneration", 0)) < int(deployment["metadata"]["generation"]):
        # The status still describes the previous template: right after a rollback its
        # ProgressDeadlineExceeded belongs to the version just rolled away from.
        return "progressing"
    for c in status.get("conditions") or []:
        if c.get("type") == "Progressing" and c.get("reason") == "ProgressDeadlineExceeded":
            return "failed"
    done = (
        int(status.get("updatedReplicas", 0)) == replicas
        and int(status.get("availableReplicas", 0)) >= replicas
        and int(status.get("replicas", 0)) == replicas
        and not status.get("unavailableReplicas")
    )
    return "complete" if done else "progressing"


def applied_version(deployment: dict[str, Any]) -> str | None:
    template = (deployment.get("spec") or {}).get("template") or {}
    value = ((template.get("metadata") or {}).get("annotations") or {}).get(
        MODEL_VERSION_ANNOTATION)
    return str(value) if value else None


def due_tick(schedule: str, tz: str | None, last: dt.datetime | None, created: dt.datetime,
             at: dt.datetime) -> dt.datetime | None:
    """The most recent schedule time in (last or created, at], if any (missed ones are
    collapsed into one run, like a CronJob)."""
    zone = ZoneInfo(tz) if tz else dt.UTC
    local_now = at.astimezone(zone)
    previous: dt.datetime = croniter(schedule, local_now).get_prev(dt.datetime)
    since = last or created
    return previous.astimezone(dt.UTC) if previous > since else None


class LineageReconciler:
    def __init__(self, kube: Kube, config: OperatorConfig, metrics: Metrics) -> None:
        self.kube = kube
        self.config = config
        self.metrics = metrics
        self.stores = objectstore.StoreCache(kube)
        self._locks: dict[tuple[str, str], threading.Lock] = defaultdict(threading.Lock)
        self._guard = threading.Lock()

    def _lock(self, namespace: str, name: str) -> threading.Lock:
        # The event handler and the timer may fire together; one reconcile at a time.
        with self._guard:
            return self._locks[(namespace, name)]

    def reconcile(self, namespace: str, name: str) -> float | None:
        with self._lock(namespace, name), self.metrics.reconcile_timer("ModelLineage"):
            obj = self.kube.get_lineage(namespace, name)
            if obj is None or obj["metadata"].get("deletionTimestamp"):
                return None
            lineage = ModelLineage.model_validate(obj)
            status = lineage.status or ModelLineageStatus()
            # Nothing in flight: events (spec edits, registrations) bring it back sooner;
            # a rollout, a problem or the next cron tick shorten this below.
            plan = Plan(requeue=self.config.poll_seconds * 6)
            generation = obj["metadata"].get("generation")
            fresh = not status.versions
            self._base(lineage, status, plan, generation)
            if fresh and lineage_index.find(status, lineage_index.BASE_VERSION) is not None:
                self._recover(lineage, status, plan)
            self._serving(lineage, status, plan, generation)
            self._schedule(lineage, status, plan)
            self._retention(lineage, status, plan)
            self._write(obj, plan, generation)
            return plan.requeue

    # -- base -------------------------------------------------------------------------
    def _base(self, lineage: ModelLineage, status: ModelLineageStatus, plan: Plan,
              generation: int | None) -> None:
        if lineage_index.find(status, lineage_index.BASE_VERSION) is not None:
            return
        ns = lineage.metadata["namespace"]
        try:
            store = self.stores.get(ns, lineage.spec.storage.secret_ref.name)
            read = objectstore.read_manifest(store, lineage.spec.base.uri)
        except objectstore.CredentialsMissing as exc:
            self._degraded(plan, LineageReason.STORAGE_SECRET_NOT_FOUND, str(exc), generation)
            return
        except (StorageError, record.RecordError) as exc:
            self._degraded(plan, LineageReason.BASE_UNVERIFIED,
                           f"cannot read the base manifest at {lineage.spec.base.uri}: {exc}",
                           generation)
            return
        if lineage.spec.base.digest and read.digest != lineage.spec.base.digest:
            self._degraded(plan, LineageReason.BASE_UNVERIFIED,
                           f"base manifest hashes to {read.digest}, spec.base.digest pins "
                           f"{lineage.spec.base.digest}", generation)
            return
        try:
            trust.verify_version(store, lineage.spec, None, lineage.spec.base.uri, read.raw)
        except (trust.SignatureRefused, StorageError) as exc:
            self._degraded(plan, getattr(exc, "reason", LineageReason.BASE_UNVERIFIED),
                           f"base at {lineage.spec.base.uri}: {exc}", generation)
            return
        entry = lineage_index.entry_from_manifest(
            lineage_index.BASE_VERSION, record.ensure_prefix(lineage.spec.base.uri), read.digest,
            read.manifest, VersionPhase.PROMOTED, "Base: version 0 of the lineage", None)

        # A base without a classification head for these labels (a pretrained encoder) is
        # a starting point, not something to serve.
        servable = read.manifest.has_trained_head

        def register_base(s: ModelLineageStatus) -> None:
            if lineage_index.upsert(s, entry) and servable and not s.desired_version:
                s.desired_version = lineage_index.BASE_VERSION

        plan.deltas.append(register_base)
        register_base(status)  # so the rest of this reconcile sees it
        plan.event("BaseRegistered", f"Base version registered ({read.digest})")

    def _recover(self, lineage: ModelLineage, status: ModelLineageStatus, plan: Plan) -> None:
        """A lineage with an empty index over a storage prefix that already holds versions
        (the object was re-created): index them again from their manifests."""
        ns, name = lineage.metadata["namespace"], lineage.metadata["name"]
        storage_uri = lineage.spec.storage.uri
        try:
            store = self.stores.get(ns, lineage.spec.storage.secret_ref.name)
            names = recovery.version_names((o.uri for o in store.list(storage_uri)),
                                           storage_uri)
        except (objectstore.CredentialsMissing, StorageError) as exc:
            plan.event("RecoveryFailed", f"cannot list {storage_uri}: {exc}", warning=True)
            return
        base = lineage_index.find(status, lineage_index.BASE_VERSION)
        found = []
        for version in names:
            if version == lineage_index.BASE_VERSION:
                continue  # registered from spec.base, wherever it lives
            uri = record.version_uri(storage_uri, version)
            try:
                read = objectstore.read_manifest(store, uri)
            except (StorageError, record.RecordError) as exc:
                plan.event("RecoveryFailed", f"version {version} left out: {exc}",
                           warning=True)
                continue
            refused = trust.refuse_unsigned_recovery(store, lineage.spec, version, read.raw)
            if refused:
                plan.event("RecoveryFailed", f"version {version} left out: {refused}",
                           warning=True)
                continue
            if base is None or read.digest != base.manifest_digest:  # the base, published here
                found.append((version, uri, read))
        serving = None
        if lineage.spec.serving is not None:
            deployment = self.kube.get_deployment(ns, lineage.spec.serving.deployment_ref.name)
            serving = applied_version(deployment) if deployment else None
        entries = recovery.recovered_entries(found, name, serving)
        if not entries:
            return
        recovered_serving = serving if any(e.name == serving for e in entries) else None

        try:  # the serving history survives the object: the rollback target and anchor
            previous, head = servinghistory.recovered_previous(store, storage_uri,
                                                               recovered_serving)
        except (history.HistoryError, StorageError) as exc:
            previous, head = None, None
            plan.event(servinghistory.HISTORY_TAMPERED, f"serving history: {exc}", warning=True)

        def reindex(s: ModelLineageStatus) -> None:
            for entry in entries:
                lineage_index.upsert(s, entry)
            if recovered_serving:
                s.desired_version = recovered_serving
            if previous and lineage_index.find(s, previous) is not None:
                s.previous_version = previous
            s.history_head = head or s.history_head

        plan.deltas.append(reindex)
        reindex(status)
        plan.event(recovery.RECOVERED, f"Re-indexed {len(entries)} versions from their "
                   f"manifests under {storage_uri}" + (
                       f"; {recovered_serving} stays serving" if recovered_serving else ""))

    # -- serving ----------------------------------------------------------------------
    def _serving(self, lineage: ModelLineage, status: ModelLineageStatus, plan: Plan,
                 generation: int | None) -> None:
        ns, name = lineage.metadata["namespace"], lineage.metadata["name"]
        pinned = lineage.spec.pinned_version
        desired = status.desired_version
        if pinned:
            entry = lineage_index.find(status, pinned)
            if entry is None or entry.phase == VersionPhase.RETIRED:
                self._degraded(plan, LineageReason.PINNED_VERSION_NOT_FOUND,
                               f'spec.pinnedVersion "{pinned}" is not a servable version of this '
                               "lineage; serving is left as it is", generation)
                return
            # A pinned version that already failed its rollout is not retried: serving stays
            # on the version it was rolled back to until the pin changes.
            if entry.phase != VersionPhase.ROLLED_BACK:
                desired = pinned
        serving = lineage.spec.serving
        if serving is None:
            if desired:
                plan.deltas.append(lambda s: setattr(s, "serving_version", desired))
            self._ready(plan, True, LineageReason.NO_SERVING_CONFIGURED,
                        "no serving Deployment configured: the lineage is a registry", generation)
            return
        if not desired:
            self._ready(plan, False, LineageReason.NO_VERSION_SERVING, "no version to serve yet",
                        generation)
            return
        deployment = self.kube.get_deployment(ns, serving.deployment_ref.name)
        if deployment is None:
            self._ready(plan, False, LineageReason.DEPLOYMENT_NOT_FOUND,
                        f'Deployment "{serving.deployment_ref.name}" not found in {ns}',
                        generation)
            return
        containers = deployment["spec"]["template"]["spec"].get("containers") or []
        if not any(c.get("name") == serving.container for c in containers):
            self._ready(plan, False, LineageReason.CONTAINER_NOT_FOUND,
                        f'Deployment "{serving.deployment_ref.name}" has no container '
                        f'"{serving.container}"', generation)
            return
        current = applied_version(deployment)
        if current != desired:
            self._roll_out(lineage, status, deployment, desired, current, plan, generation)
            return
        state = rollout_state(deployment)
        if state == "complete":
            if status.serving_version == desired or self._history(lineage, status, desired,
                                                                  plan, generation):
                self._complete(status, desired, plan, generation, ns, name)
            return
        progressing = find_condition(status.conditions or [], LineageConditionType.PROGRESSING)
        started = progressing.last_transition_time if progressing and \
            progressing.status == ConditionStatus.TRUE else now()
        elapsed = (now() - started).total_seconds()
        if state == "failed" or elapsed > serving.progress_deadline_seconds:
            self._roll_back(lineage, status, desired, plan, generation, elapsed)
            return
        plan.requeue = min(plan.requeue, 2.0)

    def _roll_out(self, lineage: ModelLineage, status: ModelLineageStatus,
                  deployment: dict[str, Any], desired: str, current: str | None, plan: Plan,
                  generation: int | None) -> None:
        serving = lineage.spec.serving
        assert serving is not None
        entry = lineage_index.find(status, desired)
        assert entry is not None and entry.manifest_digest
        ns = lineage.metadata["namespace"]
        try:  # the bytes in storage now: a version swapped after it was recorded is caught
            trust.verify_version(self.stores.get(ns, lineage.spec.storage.secret_ref.name),
                                 lineage.spec, None, entry.uri)
        except (trust.SignatureRefused, objectstore.CredentialsMissing, StorageError) as exc:
            self._degraded(plan, getattr(exc, "reason", LineageReason.STORAGE_UNREACHABLE),
                           f"not rolling out {desired}: {exc}", generation)
            return
        body = builders.serving_patch(
            serving.deployment_ref.name, serving.container, serving.model_uri_env,
            serving.model_digest_env, desired, entry.uri, entry.manifest_digest,
            extra_env=trust.serving_env(lineage.spec))
        self.kube.apply_deployment(ns, serving.deployment_ref.name, body,
                                   self.config.field_manager)
        failpoints.crash_point(failpoints.AFTER_DEPLOYMENT_APPLIED)
        serving_before = status.serving_version or current

        def start(s: ModelLineageStatus) -> None:
            if serving_before and serving_before != desired:
                s.previous_version = serving_before
            # Each rollout is its own progression and its deadline counts from its own
            # start: a rollback that begins while the failed rollout's Progressing is still
            # True must not inherit that rollout's age (it would time out at once).
            s.conditions = [c for c in s.conditions or []
                            if c.type != LineageConditionType.PROGRESSING]
            s.conditions = set_condition(s.conditions, cond(
                LineageConditionType.PROGRESSING, True, LineageReason.ROLLING_OUT,
                f"rolling out {desired} to Deployment {serving.deployment_ref.name}",
                generation))

        plan.deltas.append(start)
        plan.event(LineageReason.ROLLING_OUT, f"Rolling out version {desired} "
                   f"(was {current or 'none'}) to Deployment {serving.deployment_ref.name}")
        plan.requeue = 1.0

    def _history(self, lineage: ModelLineage, status: ModelLineageStatus, desired: str,
                 plan: Plan, generation: int | None) -> bool:
        """Logs the change of what serves before the status shows it (servinghistory)."""
        try:
            store = self.stores.get(lineage.metadata["namespace"],
                                    lineage.spec.storage.secret_ref.name)
            head = servinghistory.record_serving(store, lineage, status, desired, now())
        except history.HistoryError as exc:
            self._degraded(plan, servinghistory.HISTORY_TAMPERED, f"serving history: {exc}",
                           generation)
            return True  # serving did change: a broken log must not hide that
        except (objectstore.CredentialsMissing, StorageError) as exc:
            self._degraded(plan, LineageReason.STORAGE_UNREACHABLE,
                           f"{desired} serves, not yet in the serving history: {exc}", generation)
            return False
        plan.deltas.append(lambda s: setattr(s, "history_head", head))
        return True

    def _complete(self, status: ModelLineageStatus, desired: str, plan: Plan,
                  generation: int | None, ns: str, name: str) -> None:
        def done(s: ModelLineageStatus) -> None:
            if s.serving_version != desired:
                if s.serving_version:
                    s.previous_version = s.serving_version
                s.serving_version = desired
            s.conditions = set_condition(s.conditions or [], cond(
                LineageConditionType.PROGRESSING, False, LineageReason.ROLLOUT_COMPLETE,
                f"version {desired} is available", generation))

        if status.serving_version != desired:
            plan.event(LineageReason.ROLLOUT_COMPLETE, f"Version {desired} is serving")
            if status.serving_version:
                self.metrics.serving_info.labels(namespace=ns, lineage=name,
                                                 version=status.serving_version).set(0)
        self.metrics.serving_info.labels(namespace=ns, lineage=name, version=desired).set(1)
        plan.deltas.append(done)
        self._ready(plan, True, LineageReason.SERVING, f"version {desired} is serving",
                    generation, clear_degraded=self._recovered(status, desired, generation))

    @staticmethod
    def _recovered(status: ModelLineageStatus, serving: str, generation: int | None) -> bool:
        """A rollback keeps the lineage Degraded until someone changes the spec (a new pin,
        say) or a version newer than the one rolled back is serving."""
        degraded = find_condition(status.conditions or [], LineageConditionType.DEGRADED)
        if degraded is None or degraded.status != ConditionStatus.TRUE:
            return True
        if degraded.reason != LineageReason.ROLLED_BACK:
            return True
        if degraded.observed_generation != generation:
            return True
        current = lineage_index.find(status, serving)
        failed = [v.created_at for v in status.versions or []
                  if v.phase == VersionPhase.ROLLED_BACK and v.created_at]
        return bool(current and current.created_at and failed
                    and current.created_at > max(failed))

    def _roll_back(self, lineage: ModelLineage, status: ModelLineageStatus, failed: str,
                   plan: Plan, generation: int | None, elapsed: float) -> None:
        ns, name = lineage.metadata["namespace"], lineage.metadata["name"]
        target = status.previous_version if status.previous_version != failed else None
        target = target or (status.serving_version if status.serving_version != failed else None)
        deadline = lineage.spec.serving.progress_deadline_seconds if lineage.spec.serving else 0
        why = (f"version {failed} was not available after {elapsed:.0f}s "
               f"(progressDeadlineSeconds {deadline})")
        if target is None:
            self._degraded(plan, LineageReason.ROLLOUT_TIMED_OUT,
                           why + "; there is no earlier version to roll back to", generation)
            plan.requeue = 10.0
            return

        def roll_back(s: ModelLineageStatus) -> None:
            if s.desired_version == failed:
                s.desired_version = target
            lineage_index.set_phase(s, failed, VersionPhase.ROLLED_BACK,
                                    f"{LineageReason.ROLLOUT_TIMED_OUT}: {why}")
            s.conditions = set_condition(s.conditions or [], cond(
                LineageConditionType.DEGRADED, True, LineageReason.ROLLED_BACK,
                f"{why}; rolled back to {target}", generation))

        plan.deltas.append(roll_back)
        self.metrics.rollbacks.labels(namespace=ns, lineage=name).inc()
        plan.event(LineageReason.ROLLED_BACK, f"{why}; rolling back to {target}", warning=True)
        plan.requeue = 0.5

    # -- schedule ---------------------------------------------------------------------
    def _schedule(self, lineage: ModelLineage, status: ModelLineageStatus, plan: Plan) -> None:
        retraining = lineage.spec.retraining
        if retraining is None or retraining.suspend:
            return
        ns, name = lineage.metadata["namespace"], lineage.metadata["name"]
        created = dt.datetime.fromisoformat(
            lineage.metadata["creationTimestamp"].replace("Z", "+00:00"))
        at = now()
        tick = due_tick(retraining.schedule, retraining.time_zone, status.last_schedule_time,
                        created, at)
        zone = ZoneInfo(retraining.time_zone) if retraining.time_zone else dt.UTC
        upcoming: dt.datetime = croniter(retraining.schedule, at.astimezone(zone)).get_next(
            dt.datetime)
        plan.requeue = min(plan.requeue, max(1.0, (upcoming - at).total_seconds() + 0.5))
        if tick is None:
            return
        mine = [o for o in self.kube.list_wsjs(ns)
                if (o["metadata"].get("labels") or {}).get(SCHEDULED_BY_LABEL) == name]
        active = [o for o in mine
                  if (o.get("status") or {}).get("phase") not in TERMINAL_JOB_PHASES]
        job_name = naming.scheduled_job(name, int(tick.timestamp()))
        if active and all(o["metadata"]["name"] != job_name for o in active):
            if retraining.concurrency_policy == ConcurrencyPolicy.FORBID:
                plan.event("ScheduleSkipped", f"Skipped the run due at {tick.isoformat()}: "
                           f"{active[0]['metadata']['name']} is still running (Forbid)")
                plan.deltas.append(lambda s: setattr(s, "last_schedule_time", tick))
                return
            for old in active:
                self.kube.delete_wsj(ns, old["metadata"]["name"])
                plan.event("ScheduleReplaced", f"Stopped {old['metadata']['name']} (Replace)")
        body = {
            "apiVersion": API_VERSION,
            "kind": WARMSTARTJOB_KIND,
            "metadata": {
                "name": job_name,
                "namespace": ns,
                "labels": {SCHEDULED_BY_LABEL: name},
                "ownerReferences": [{"apiVersion": API_VERSION, "kind": "ModelLineage",
                                     "name": name, "uid": lineage.metadata["uid"],
                                     "controller": True, "blockOwnerDeletion": False}],
            },
            "spec": {**retraining.template.to_api(), "lineageRef": {"name": name}},
        }
        if self.kube.create_wsj(ns, body) is not None:
            plan.event("ScheduledRun", f"Created WarmStartJob {job_name} for {tick.isoformat()}")

        def record_tick(s: ModelLineageStatus) -> None:
            s.last_schedule_time = tick
            s.last_scheduled_job = job_name

        plan.deltas.append(record_tick)
        self._prune_history(ns, mine, retraining.successful_jobs_history_limit,
                            retraining.failed_jobs_history_limit)

    def _prune_history(self, ns: str, mine: list[dict[str, Any]], keep_ok: int,
                       keep_failed: int) -> None:
        finished = sorted((o for o in mine
                           if (o.get("status") or {}).get("phase") in TERMINAL_JOB_PHASES),
                          key=lambda o: o["metadata"]["creationTimestamp"])
        failed = [o for o in finished if o["status"]["phase"] == "Failed"]
        ok = [o for o in finished if o["status"]["phase"] != "Failed"]
        for group, keep in ((ok, keep_ok), (failed, keep_failed)):
            for old in group[: max(0, len(group) - keep)]:
                self.kube.delete_wsj(ns, old["metadata"]["name"])

    # -- retention --------------------------------------------------------------------
    def _retention(self, lineage: ModelLineage, status: ModelLineageStatus, plan: Plan) -> None:
        keep = lineage.spec.retention.keep_versions
        storage_root = record.ensure_prefix(lineage.spec.storage.uri)
        protected = {status.serving_version, status.previous_version, status.desired_version,
                     lineage.spec.pinned_version, lineage_index.BASE_VERSION}
        # Protected versions always keep their files and do not count; of the others the
        # newest `keep` stay. Only files under the lineage's own prefix are ever deleted.
        epoch = dt.datetime.min.replace(tzinfo=dt.UTC)
        others = sorted((v for v in (status.versions or [])
                         if v.phase != VersionPhase.RETIRED and v.name not in protected),
                        key=lambda v: v.created_at or epoch)
        candidates = [v for v in others[: max(0, len(others) - keep)]
                      if v.uri.startswith(storage_root)]
        if not candidates:
            return
        store = self.stores.get(lineage.metadata["namespace"],
                                lineage.spec.storage.secret_ref.name)
        for version in candidates:
            prefix = record.ensure_prefix(version.uri)
            deleted = 0
            for info in store.list(prefix):
                # The manifest stays: it is the record, and the hash chain runs through it.
                if info.uri != record.manifest_uri(prefix):
                    store.delete(info.uri)
                    deleted += 1

            def retire(s: ModelLineageStatus, name: str = version.name) -> None:
                lineage_index.set_phase(s, name, VersionPhase.RETIRED,
                                        f"Retention: beyond keepVersions {keep}; weights "
                                        "deleted, manifest kept")

            plan.deltas.append(retire)
            plan.event("VersionRetired", f"Version {version.name} retired: {deleted} files "
                       "deleted, manifest kept")

    # -- conditions and writing -------------------------------------------------------
    def _ready(self, plan: Plan, ok: bool, reason: str, message: str, generation: int | None,
               clear_degraded: bool = False) -> None:
        if ok and plan.degraded:
            return  # a problem found earlier in this reconcile decides Ready
        if not ok:
            # Something is missing (a Deployment, a version): look again soon for it.
            plan.requeue = min(plan.requeue, self.config.poll_seconds * 2)

        def apply(s: ModelLineageStatus) -> None:
            s.conditions = set_condition(s.conditions or [], cond(
                LineageConditionType.READY, ok, reason, message, generation))
            if clear_degraded:
                s.conditions = set_condition(s.conditions, cond(
                    LineageConditionType.DEGRADED, False, LineageReason.RECONCILED,
                    "nothing is degraded", generation))

        plan.deltas.append(apply)

    def _degraded(self, plan: Plan, reason: str, message: str, generation: int | None) -> None:
        plan.requeue = min(plan.requeue, self.config.poll_seconds * 2)
        def apply(s: ModelLineageStatus) -> None:
            s.conditions = set_condition(s.conditions or [], cond(
                LineageConditionType.DEGRADED, True, reason, message, generation))
            s.conditions = set_condition(s.conditions, cond(
                LineageConditionType.READY, False, reason, message, generation))

        plan.deltas.append(apply)
        plan.degraded = True
        plan.event(reason, message, warning=True)

    def _write(self, obj: dict[str, Any], plan: Plan, generation: int | None) -> None:
        meta = obj["metadata"]
        changed: list[bool] = []

        def mutate(fresh: dict[str, Any]) -> dict[str, Any] | None:
            before = fresh.get("status") or {}
            status = ModelLineageStatus.model_validate(before)
            # A reconcile that got this far had the permissions it needed.
            status.conditions = [c for c in status.conditions or []
                                 if c.reason != "PermissionDenied"] or None
            for delta in plan.deltas:
                delta(status)
            status.observed_generation = generation
            after = status.to_api()
            changed[:] = [after != before]
            return after if after != before else None

        self.kube.update_status_guarded(meta["namespace"], MODELLINEAGE_PLURAL, meta["name"],
                                        mutate)
        # Events mark transitions: a reconcile that changed nothing has nothing to announce.
        if not any(changed):
            return
        for kind, reason, message in plan.events:
            self.kube.post_event(obj, kind, reason, message, "modellineage-controller")
