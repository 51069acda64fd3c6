"""WarmStartJob reconcile: from a new object to a recorded, gated version.

Level-triggered: every call reads what exists (the WarmStartJob, its lineage, its Job) and
takes the one next step; any step may be repeated after a crash without effect:
- the parent is resolved once and written to status before anything is created;
- the ConfigMap and Job have deterministic names, so creating them twice is a 409;
- the version, its gate verdict and the promotion request land in ONE lineage status write
  (optimistic concurrency), so a version is registered exactly once and the verdict never
  re-evaluated against a serving version it has itself become.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from warmstart import record, trainspec
from warmstart.api.conditions import Condition, JobConditionType, JobReason, set_condition
from warmstart.api.constants import (
    MODELLINEAGE_PLURAL,
    TERMINAL_JOB_PHASES,
    WARMSTARTJOB_PLURAL,
    ConditionStatus,
    JobPhase,
    JobPromotion,
    PromotionPolicy,
    VersionPhase,
)
from warmstart.api.modellineage import ModelLineage, ModelLineageStatus
from warmstart.api.warmstartjob import (
    JobMetrics,
    JobOutput,
    ReplayMetrics,
    ResolvedParent,
    TrainingSummary,
    WarmStartJobSpec,
    WarmStartJobStatus,
)
from warmstart.storage import ObjectNotFoundError, StorageError
from warmstart_operator import builders, failpoints, gate, lineage_index, naming, objectstore, trust
from warmstart_operator.config import OperatorConfig
from warmstart_operator.kube import Kube
from warmstart_operator.metrics import Metrics
from warmstart_operator.queuewake import QueueWake

log = logging.getLogger("warmstart.jobs")

ACTIVE_PHASES = {JobPhase.TRAINING, JobPhase.EVALUATING, JobPhase.REGISTERING}


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


class Wait(Exception):
    """Not ready yet (e.g. the lineage is still registering its base): stay Pending."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class Failure(Exception):
    """Ends the run as Failed with a condition reason and a message a person understands."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass
class Step:
    """What one reconcile decided: the status to write and events to post."""

    status: WarmStartJobStatus
    events: list[tuple[str, str, str]] = field(default_factory=list)
    requeue: float | None = None

    def event(self, reason: str, message: str, warning: bool = False) -> None:
        self.events.append(("Warning" if warning else "Normal", reason, message))


def condition(kind: str, ok: bool, reason: str, message: str, generation: int | None
              ) -> Condition:
    return Condition(type=kind, status=ConditionStatus.TRUE if ok else ConditionStatus.FALSE,
                     reason=reason, message=message, last_transition_time=now(),
                     observed_generation=generation)


def job_outcome(job: dict[str, Any]) -> tuple[str, str]:
    """(running|complete|failed, reason) from a batch/v1 Job's conditions."""
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("status") != "True":
            continue
        if cond.get("type") == "Complete":
            return "complete", ""
        if cond.get("type") == "Failed":
            return "failed", str(cond.get("reason") or "Failed")
    return "running", ""


def termination_reason(pods: list[dict[str, Any]]) -> str:
    """The trainer's own words from the newest failed pod's termination message."""
    messages = []
    for pod in pods:
        for cs in (pod.get("status") or {}).get("containerStatuses") or []:
            term = (cs.get("state") or {}).get("terminated") or {}
            if term.get("exitCode", 0) != 0:
                messages.append((term.get("finishedAt") or "", term.get("exitCode"),
                                 (term.get("message") or "").strip()))
    if not messages:
        return ""
    _, code, message = sorted(messages)[-1]
    return f"exit code {code}: {message[-600:]}" if message else f"exit code {code}"


def _age_seconds(meta: dict[str, Any]) -> float:
    created = dt.datetime.fromisoformat(meta["creationTimestamp"].replace("Z", "+00:00"))
    return (now() - created).total_seconds()


def _lineage_broken(lineage: ModelLineage) -> bool:
    """True when the lineage reports it cannot read its base: waiting would not help."""
    for cond in (lineage.status.conditions if lineage.status else None) or []:
        if cond.type == "Degraded" and cond.status == ConditionStatus.TRUE:
            return True
    return False


class JobReconciler:
    def __init__(self, kube: Kube, config: OperatorConfig, metrics: Metrics) -> None:
        self.kube = kube
        self.config = config
        self.metrics = metrics
        self.stores = objectstore.StoreCache(kube)
        self.queue = QueueWake(config.queue_recheck_seconds)
        self._lineage_locks: dict[tuple[str, str], threading.Lock] = defaultdict(threading.Lock)
        self._object_locks: dict[tuple[str, str], threading.Lock] = defaultdict(threading.Lock)
        self._guard = threading.Lock()

    def _lock(self, table: dict[tuple[str, str], threading.Lock], key: tuple[str, str]
              ) -> threading.Lock:
        with self._guard:
            return table[key]

    # -- entry point ------------------------------------------------------------------
    def reconcile(self, namespace: str, name: str) -> float | None:
        """Runs one step; returns seconds until the next look, or None when terminal."""
        with self._lock(self._object_locks, (namespace, name)), self.metrics.reconcile_timer(
                "WarmStartJob"):
            # Parked again below if it is still waiting after this look.
            self.queue.unpark(namespace, name)
            wsj = self.kube.get_wsj(namespace, name)
            if wsj is None or wsj["metadata"].get("deletionTimestamp"):
                return None
            status = WarmStartJobStatus.model_validate(wsj.get("status") or {})
            if status.phase in TERMINAL_JOB_PHASES:
                return None
            step = Step(status=status.model_copy(deep=True))
            try:
                self._step(wsj, step)
            except Wait as wait:
                step.status.phase = JobPhase.PENDING
                step.status.conditions = set_condition(step.status.conditions or [], condition(
                    JobConditionType.PARENT_RESOLVED, False, wait.reason, str(wait),
                    wsj["metadata"].get("generation")))
                step.requeue = self.config.poll_seconds
            except Failure as failure:
                self._fail(wsj, step, failure.reason, str(failure))
            # A reconcile that got this far had the permissions it needed.
            step.status.conditions = [c for c in step.status.conditions or []
                                      if c.reason != "PermissionDenied"] or None
            self._write(wsj, status, step)
            return step.requeue

    # -- the steps --------------------------------------------------------------------
    def _step(self, wsj: dict[str, Any], step: Step) -> None:
        meta = wsj["metadata"]
        ns, name, generation = meta["namespace"], meta["name"], meta.get("generation")
        try:
            spec = WarmStartJobSpec.model_validate(wsj.get("spec") or {})
        except ValidationError as exc:
            first = exc.errors()[0]
            where = "spec." + ".".join(str(p) for p in first["loc"])
            raise Failure("InvalidSpec", f"{where}: {first['msg']}") from None
        lineage_obj = self.kube.get_lineage(ns, spec.lineage_ref.name)
        if lineage_obj is None:
            message = (f'ModelLineage "{spec.lineage_ref.name}" does not exist in namespace '
                       f"{ns}")
            # GitOps tools apply a job and its lineage together, in any order: give the
            # lineage a moment to appear before calling the reference wrong.
            if _age_seconds(meta) < self.config.lineage_grace_seconds and \
                    not step.status.job_name:
                raise Wait(JobReason.LINEAGE_NOT_FOUND, message + " (yet); waiting")
            raise Failure(JobReason.LINEAGE_NOT_FOUND, message)
        lineage = ModelLineage.model_validate(lineage_obj)
        job_name = naming.training_job(name)
        job = self.kube.get_job(ns, job_name)
        if job is None:
            if step.status.job_name:
                raise Failure("JobDeleted", f"training Job {job_name} was deleted before it "
                              "finished; create a new WarmStartJob to train again")
            self._start(wsj, spec, lineage, step, generation)
            return
        owner = (job["metadata"].get("ownerReferences") or [{}])[0].get("uid")
        if owner != meta["uid"]:
            # A Job of an earlier WarmStartJob with this name is still being deleted.
            step.requeue = 2.0
            return
        self._sync_suspend(ns, job, spec)
        outcome, reason = job_outcome(job)
        if outcome == "running":
            suspended = bool(job["spec"].get("suspend"))
            step.status.phase = JobPhase.QUEUED if suspended else JobPhase.TRAINING
            if not step.status.start_time:
                step.status.start_time = now()
            step.requeue = self.config.poll_seconds * 6
            return
        if outcome == "failed":
            detail = termination_reason(self.kube.job_pods(ns, job_name))
            why = {"BackoffLimitExceeded": JobReason.BACKOFF_LIMIT_EXCEEDED,
                   "DeadlineExceeded": JobReason.DEADLINE_EXCEEDED}.get(
                reason, JobReason.TRAINING_FAILED)
            raise Failure(why, f"training Job {job_name} failed ({reason})"
                          + (f": {detail}" if detail else ""))
        self._register(wsj, spec, lineage, step, generation)

    def _start(self, wsj: dict[str, Any], spec: WarmStartJobSpec, lineage: ModelLineage,
               step: Step, generation: int | None) -> None:
        meta = wsj["metadata"]
        ns, name = meta["namespace"], meta["name"]
        if step.status.parent is None or not step.status.parent.manifest_digest:
            # Object storage is read once per job, here: a Queued job waits without
            # touching S3 again.
            store = self._storage(ns, lineage)
            parent = self._resolve_parent(spec, lineage, store)
            self._check_dataset(store, spec)
            step.status.parent = parent
            step.status.phase = JobPhase.PENDING
            step.status.conditions = set_condition(step.status.conditions or [], condition(
                JobConditionType.PARENT_RESOLVED, True, JobReason.PARENT_RESOLVED,
                f"parent {parent.version} ({parent.manifest_digest}) verified",
                generation))
            step.event(JobReason.PARENT_RESOLVED, f"Parent {parent.version} at {parent.uri} "
                       f"verified ({parent.manifest_digest})")
            # Persist the resolution before creating anything: the next step trains from
            # exactly this parent even if serving changes in between.
            step.requeue = 0.1
            return
        if spec.suspend:
            self.queue.park(ns, name, spec.lineage_ref.name, meta["creationTimestamp"],
                            wakeable=False)
            step.status.phase = JobPhase.QUEUED
            step.status.conditions = set_condition(step.status.conditions or [], condition(
                JobConditionType.COMPLETE, False, JobReason.SUSPENDED,
                "spec.suspend is true", generation))
            step.requeue = self.config.poll_seconds * 6
            return
        with self._lock(self._lineage_locks, (ns, spec.lineage_ref.name)):
            ahead = self._queue_position(ns, spec.lineage_ref.name, wsj)
            if ahead is not None:
                self.queue.park(ns, name, spec.lineage_ref.name, meta["creationTimestamp"])
                if step.status.phase != JobPhase.QUEUED:
                    step.event(JobReason.LINEAGE_BUSY, f"Queued: {ahead} of lineage "
                               f"{spec.lineage_ref.name} must start first")
                step.status.phase = JobPhase.QUEUED
                step.requeue = self.config.poll_seconds
                return
            parent = step.status.parent
            assert parent is not None and parent.uri and parent.manifest_digest
            try:
                tspec = builders.train_spec(
                    name, spec, lineage.metadata["name"], lineage.spec,
                    builders.ResolvedParent(parent.version or "external", parent.uri,
                                            parent.manifest_digest))
            except trainspec.SpecError as exc:
                raise Failure("InvalidSpec", f"spec: {exc}") from None
            self.kube.create_configmap(builders.spec_configmap(wsj, lineage.metadata["name"],
                                                              tspec))
            job = trust.add_signing(builders.training_job(
                wsj, spec, lineage.metadata["name"], lineage.spec.storage.secret_ref.name,
                self.config), lineage.spec, spec.image or self.config.trainer_image)
            created = self.kube.create_job(job)
            failpoints.crash_point(failpoints.AFTER_JOB_CREATED)
            # Status before anything else, so the queue sees this job as active at once.
            step.status.job_name = job["metadata"]["name"]
            step.status.phase = JobPhase.TRAINING
            step.status.start_time = step.status.start_time or now()
            if created is not None:
                step.event("TrainingStarted", f"Created Job {job['metadata']['name']} to train "
                           f"{tspec.version} from {parent.version}")
                self.metrics.jobs_started.labels(namespace=ns).inc()
            self._write_now(wsj, step)
        step.requeue = self.config.poll_seconds * 6

    def _register(self, wsj: dict[str, Any], spec: WarmStartJobSpec, lineage: ModelLineage,
                  step: Step, generation: int | None) -> None:
        meta = wsj["metadata"]
        ns, name = meta["namespace"], meta["name"]
        lineage_name = lineage.metadata["name"]
        version = naming.version_name(name)
        uri = record.version_uri(lineage.spec.storage.uri, version)
        store = self._storage(ns, lineage)
        try:
            child = objectstore.read_manifest(store, uri)
        except (StorageError, record.RecordError) as exc:
            raise Failure(JobReason.OUTPUT_MANIFEST_INVALID,
                          f"the trainer finished but its manifest at {uri} is unusable: {exc}"
                          ) from None
        parent = step.status.parent
        expected_parent = parent.manifest_digest if parent else None
        got_parent = child.manifest.parent.manifest_digest if child.manifest.parent else None
        if expected_parent and got_parent != expected_parent:
            raise Failure(JobReason.OUTPUT_MANIFEST_INVALID,
                          f"{uri}manifest.json names parent digest {got_parent}, but the run "
                          f"started from {expected_parent}: the hash chain is broken")
        try:
            trust.verify_version(store, lineage.spec, version, uri, child.raw)
        except trust.SignatureRefused as exc:
            raise Failure(exc.reason, f"not recording it: {exc}") from None
        policy = self._policy(spec, lineage)
        holder: dict[str, Any] = {}

        def mutate(obj: dict[str, Any]) -> dict[str, Any] | None:
            status = ModelLineageStatus.model_validate(obj.get("status") or {})
            existing = lineage_index.find(status, version)
            if existing is not None:
                if existing.manifest_digest != child.digest:
                    holder["clash"] = existing
                    return None
                holder["entry"] = existing
                return None
            replays = [gate.ReplayResult(r.get("uri", ""),
                                         lineage_index.to_metric_values(r.get("candidate")),
                                         lineage_index.to_metric_values(r.get("parent")))
                       for r in child.manifest.metrics.get("replay") or []]
            reference, reference_name = self._reference(status, child.manifest, parent)
            verdict = gate.decide(lineage.spec.promotion,
                                  lineage_index.holdout_metrics(child.manifest, "candidate"),
                                  reference, reference_name, replays)
            holder["verdict"] = verdict
            if not verdict.passed:
                phase, reason = VersionPhase.REJECTED, f"{verdict.reason}: {verdict.message}"
            elif policy == JobPromotion.AUTO:
                phase, reason = VersionPhase.PROMOTED, f"GatePassed: {verdict.message}"
            else:
                phase, reason = VersionPhase.CANDIDATE, f"GatePassed: {verdict.message}"
            entry = lineage_index.entry_from_manifest(
                version, uri, child.digest, child.manifest, phase, reason[:1024], name)
            lineage_index.upsert(status, entry)
            if phase == VersionPhase.PROMOTED and not lineage.spec.pinned_version:
                status.desired_version = version
            holder["entry"] = entry
            return status.to_api()

        self.kube.update_status_guarded(ns, MODELLINEAGE_PLURAL, lineage_name, mutate)
        failpoints.crash_point(failpoints.AFTER_VERSION_REGISTERED)
        if "clash" in holder:
            raise Failure("VersionExists", f'lineage {lineage_name} already has a version '
                          f'"{version}" with another manifest; rename the WarmStartJob')
        entry = holder["entry"]
        self._summarise(step, child, spec, lineage)
        step.status.output = JobOutput(version=version, uri=uri, manifest_digest=child.digest)
        step.status.conditions = set_condition(step.status.conditions or [], condition(
            JobConditionType.TRAINED, True, JobReason.TRAINING_SUCCEEDED,
            f"version {version} recorded ({child.digest})", generation))
        if "verdict" in holder:
            self.metrics.versions_registered.labels(namespace=ns, lineage=lineage_name).inc()
            step.event("VersionRegistered", f"Version {version} recorded in lineage "
                       f"{lineage_name} ({child.digest})")
        passed = entry.phase != VersionPhase.REJECTED
        gate_reason, _, gate_message = (entry.reason or "").partition(": ")
        step.status.conditions = set_condition(step.status.conditions, condition(
            JobConditionType.GATE_PASSED, passed, gate_reason or "Unknown", gate_message,
            generation))
        step.status.completion_time = now()
        if not passed:
            step.status.phase = JobPhase.REJECTED
            self.metrics.gate_rejections.labels(namespace=ns, lineage=lineage_name).inc()
            self.metrics.jobs_finished.labels(namespace=ns, result="Rejected").inc()
            step.event("GateRejected", f"Version {version} rejected: {gate_message}",
                       warning=True)
            return
        promoted = entry.phase == VersionPhase.PROMOTED
        step.status.conditions = set_condition(step.status.conditions, condition(
            JobConditionType.PROMOTED, promoted,
            JobReason.PROMOTED if promoted else (
                JobReason.PROMOTION_DISABLED if policy == JobPromotion.NEVER
                else JobReason.AWAITING_APPROVAL),
            f"version {version} is the lineage's desired serving version" if promoted else
            f"version {version} passed the gate; promotion policy is {policy.value}",
            generation))
        step.status.phase = JobPhase.SUCCEEDED
        self.metrics.jobs_finished.labels(namespace=ns, result="Succeeded").inc()
        if promoted:
            self.metrics.promotions.labels(namespace=ns, lineage=lineage_name).inc()
            step.event("Promoted", f"Version {version} passed the gate and is being rolled out")

    # -- helpers ----------------------------------------------------------------------
    def _reference(self, status: ModelLineageStatus, manifest: record.Manifest,
                   parent: Any) -> tuple[Any, str]:
        """What the candidate must beat: the serving version, measured on the same holdout.

        When the parent is the serving version the trainer measured it beside the candidate;
        otherwise the serving version's own holdout evaluation from its registration is used.
        """
        serving = status.serving_version or status.desired_version
        parent_version = parent.version if parent else None
        if serving is None or serving == parent_version:
            return lineage_index.holdout_metrics(manifest, "parent"), f"parent {parent_version}"
        entry = lineage_index.find(status, serving)
        return (entry.metrics if entry else None), f"serving version {serving}"

    def _policy(self, spec: WarmStartJobSpec, lineage: ModelLineage) -> JobPromotion:
        if spec.promotion is not None:
            return spec.promotion
        return (JobPromotion.AUTO if lineage.spec.promotion.policy == PromotionPolicy.AUTO
                else JobPromotion.MANUAL)

    def _summarise(self, step: Step, child: objectstore.ReadManifest, spec: WarmStartJobSpec,
                   lineage: ModelLineage) -> None:
        metric = lineage.spec.promotion.metric
        cand = lineage_index.holdout_metrics(child.manifest, "candidate")
        par = lineage_index.holdout_metrics(child.manifest, "parent")
        value = gate.metric_of(cand, metric)
        ref = gate.metric_of(par, metric)
        summary = f"{metric.value} {value:.3f}" if value is not None else None
        if summary and ref is not None:
            summary += f" (parent {ref:.3f})"
        step.status.metrics = JobMetrics(
            metric=metric, candidate=cand, parent=par, summary=summary,
            replay=[ReplayMetrics(uri=str(r.get("uri", ""))[:1024],
                                  candidate=lineage_index.to_metric_values(r.get("candidate")),
                                  parent=lineage_index.to_metric_values(r.get("parent")))
                    for r in (child.manifest.metrics.get("replay") or [])][:16] or None)
        t = child.manifest.training
        step.status.training = TrainingSummary(
            epochs=t.get("epochs"), steps=t.get("steps"), best_epoch=t.get("bestEpoch"),
            best_validation_loss=t.get("bestValidationLoss"),
            stopped_early=t.get("stoppedEarly"), seconds=t.get("trainSeconds"),
            samples_per_second=t.get("samplesPerSecond"))
        if step.status.training.seconds:
            self.metrics.training_seconds.labels(
                cold="true" if spec.cold_start else "false").observe(step.status.training.seconds)
        if value is not None:
            self.metrics.model_metric.labels(
                namespace=lineage.metadata["namespace"], lineage=lineage.metadata["name"],
                version=child.manifest.version,
                metric=metric.value).set(value)

    def _storage(self, namespace: str, lineage: ModelLineage) -> Any:
        try:
            return self.stores.get(namespace, lineage.spec.storage.secret_ref.name)
        except objectstore.CredentialsMissing as exc:
            raise Failure(JobReason.STORAGE_SECRET_NOT_FOUND, str(exc)) from None

    def _resolve_parent(self, spec: WarmStartJobSpec, lineage: ModelLineage, store: Any
                        ) -> ResolvedParent:
        try:
            choice = lineage_index.resolve_parent(spec.parent, lineage.status)
        except lineage_index.ParentUnresolved as exc:
            if exc.reason == JobReason.NO_SERVING_VERSION and not _lineage_broken(lineage):
                raise Wait(exc.reason, "the lineage has not registered its base yet; "
                           "waiting") from None
            raise Failure(exc.reason, str(exc)) from None
        try:
            read = objectstore.read_manifest(store, choice.uri)
        except ObjectNotFoundError:
            raise Failure(JobReason.PARENT_MANIFEST_UNREADABLE,
                          f"no manifest.json under parent {choice.uri}") from None
        except StorageError as exc:
            raise Failure(JobReason.PARENT_MANIFEST_UNREADABLE,
                          f"cannot read the parent manifest at {choice.uri}: {exc}") from None
        except record.RecordError as exc:
            raise Failure(JobReason.PARENT_MANIFEST_UNREADABLE, str(exc)) from None
        if choice.digest and read.digest != choice.digest:
            raise Failure(JobReason.PARENT_DIGEST_MISMATCH,
                          f"parent manifest at {choice.uri} hashes to {read.digest}, expected "
                          f"{choice.digest}: it was altered or the digest is wrong")
        return ResolvedParent(version=choice.version, uri=choice.uri,
                              manifest_digest=read.digest)

    def _check_dataset(self, store: Any, spec: WarmStartJobSpec) -> None:
        for field_name, uri in (("trainURI", spec.dataset.train_uri),
                                ("validationURI", spec.dataset.validation_uri)):
            if not uri:
                continue
            try:
                found = store.exists(uri)
            except StorageError as exc:
                raise Failure("DatasetUnreadable", f"spec.dataset.{field_name} {uri}: {exc}"
                              ) from None
            if not found:
                raise Failure("DatasetNotFound", f"spec.dataset.{field_name}: no object at {uri}")

    def _queue_position(self, ns: str, lineage: str, wsj: dict[str, Any]) -> str | None:
        """None if this job may start now, else the name of a job that goes first."""
        limit = self.config.max_active_per_lineage
        others = [o for o in self.kube.list_wsjs(ns)
                  if (o.get("spec") or {}).get("lineageRef", {}).get("name") == lineage]
        active = [o for o in others if (o.get("status") or {}).get("jobName")
                  and (o.get("status") or {}).get("phase") not in TERMINAL_JOB_PHASES]
        if len(active) >= limit:
            return str(active[0]["metadata"]["name"])
        waiting = sorted(
            (o for o in others if not (o.get("status") or {}).get("jobName")
             and (o.get("status") or {}).get("phase") not in TERMINAL_JOB_PHASES
             and not (o.get("spec") or {}).get("suspend")),
            key=lambda o: (o["metadata"]["creationTimestamp"], o["metadata"]["name"]))
        slots = limit - len(active)
        admitted = [o["metadata"]["uid"] for o in waiting[:slots]]
        if wsj["metadata"]["uid"] in admitted or not waiting:
            return None
        return str(waiting[0]["metadata"]["name"])

    def _sync_suspend(self, ns: str, job: dict[str, Any], spec: WarmStartJobSpec) -> None:
        if bool(job["spec"].get("suspend")) != spec.suspend:
            self.kube.patch_job(ns, job["metadata"]["name"], {"spec": {"suspend": spec.suspend}})

    def _fail(self, wsj: dict[str, Any], step: Step, reason: str, message: str) -> None:
        meta = wsj["metadata"]
        step.status.phase = JobPhase.FAILED
        step.status.completion_time = now()
        step.status.conditions = set_condition(step.status.conditions or [], condition(
            JobConditionType.FAILED, True, reason, message, meta.get("generation")))
        step.event(reason, message, warning=True)
        step.requeue = None
        self.metrics.jobs_finished.labels(namespace=meta["namespace"], result="Failed").inc()
        log.info("WarmStartJob %s/%s failed: %s: %s", meta["namespace"], meta["name"], reason,
                 message)

    def _write_now(self, wsj: dict[str, Any], step: Step) -> None:
        meta = wsj["metadata"]
        step.status.observed_generation = meta.get("generation")
        self.kube.patch_status(meta["namespace"], WARMSTARTJOB_PLURAL, meta["name"],
                               step.status.to_api())
        wsj["status"] = step.status.to_api()

    def _write(self, wsj: dict[str, Any], before: WarmStartJobStatus, step: Step) -> None:
        meta = wsj["metadata"]
        step.status.observed_generation = meta.get("generation")
        new = step.status.to_api()
        if new != (wsj.get("status") or {}):
            self.kube.patch_status(meta["namespace"], WARMSTARTJOB_PLURAL, meta["name"], new)
            if step.status.phase == JobPhase.PENDING:
                failpoints.crash_point(failpoints.AFTER_PARENT_RESOLVED)
            if step.status.phase != before.phase:
                self.metrics.set_phase(meta["namespace"], meta["name"], step.status.phase)
        for kind, reason, message in step.events:
            self.kube.post_event(wsj, kind, reason, message, "warmstartjob-controller")
