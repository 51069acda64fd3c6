"""WarmStartJob reconcile: from a new object to a trained, verified, gated run.

Level-triggered: every call reads what exists (the WarmStartJob, its lineage, its Job) and
takes the one next step; any step may be repeated after a crash without effect:
- the parent is resolved once and written to status before anything is created;
- the ConfigMap and Job have deterministic names, so creating them twice is a 409;
- a finished training's manifest is read and checked against the parent here, then the job
  waits in Registering: the LINEAGE reconciler records the version and applies the gate (it
  alone writes the lineage status); this job reads the verdict from the lineage and ends.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections import defaultdict
from typing import Any

from pydantic import ValidationError

from warmstart import record, trainspec
from warmstart.api.conditions import JobConditionType, JobReason, set_condition
from warmstart.api.constants import (
    TERMINAL_JOB_PHASES,
    JobPhase,
    JobPromotion,
    VersionPhase,
)
from warmstart.api.modellineage import ModelLineage
from warmstart.api.warmstartjob import (
    JobOutput,
    WarmStartJobSpec,
    WarmStartJobStatus,
)
from warmstart.storage import StorageError
from warmstart_operator import (
    builders,
    failpoints,
    imagepull,
    jobinputs,
    lineage_index,
    naming,
    objectstore,
    signatures,
    trust,
)
from warmstart_operator.cluster import Cluster
from warmstart_operator.config import OperatorConfig
from warmstart_operator.jobindex import JobsOf, queue_position
from warmstart_operator.jobsteps import (
    SAFETY_NET_SECONDS,
    Failure,
    Wait,
    job_outcome,
    majority_class_warning,
    policy_of,
    summarise,
    termination_reason,
)
from warmstart_operator.metrics import Metrics
from warmstart_operator.outcome import Outcome, StatusWriter, condition, parse_time
from warmstart_operator.workqueue import Key

log = logging.getLogger("warmstart.jobs")


class JobReconciler:
    def __init__(self, kube: Cluster, config: OperatorConfig, metrics: Metrics,
                 jobs_of: JobsOf, stores: objectstore.StoreCache,
                 claimants: trust.ClaimantsIn, status_writer: StatusWriter) -> None:
        self.kube = kube
        self.config = config
        self.metrics = metrics
        self.jobs_of = jobs_of
        self.stores = stores
        self.claimants = claimants
        # Jobs this operator created a training Job for whose status the index has not
        # caught up with yet: they hold their slot meanwhile.
        self._admitted: dict[tuple[str, str], set[str]] = defaultdict(set)
        self._lineage_locks: dict[tuple[str, str], threading.Lock] = defaultdict(threading.Lock)
        self._guard = threading.Lock()
        # The controller's status write, for Outcome.write_now (see outcome.py).
        self.status_writer = status_writer

    def reconcile(self, key: Key, now: dt.datetime) -> Outcome:
        wsj = self.kube.get_wsj(key.namespace, key.name)
        if wsj is None or wsj["metadata"].get("deletionTimestamp"):
            return Outcome(None)
        status = WarmStartJobStatus.model_validate(wsj.get("status") or {})
        if status.phase in TERMINAL_JOB_PHASES:
            return Outcome(wsj)
        out = Outcome(wsj, writer=self.status_writer)
        step = status.model_copy(deep=True)
        generation = wsj["metadata"].get("generation")
        try:
            self._step(wsj, step, out, now)
        except Wait as wait:
            step.phase = JobPhase.PENDING
            step.conditions = set_condition(step.conditions or [], condition(
                JobConditionType.PARENT_RESOLVED, False, wait.reason, str(wait), generation,
                now))
            out.look_again(wait.retry_after)
        except Failure as failure:
            self._fail(wsj, step, out, failure.reason, str(failure), now)
        # A reconcile that got this far had the permissions it needed.
        step.conditions = [c for c in step.conditions or []
                           if c.reason != "PermissionDenied"] or None
        step.observed_generation = generation
        out.status = step.to_api()
        if step.phase != status.phase:
            self.metrics.set_phase(key.namespace, key.name, step.phase)
        return out

    # -- the steps --------------------------------------------------------------------
    def _step(self, wsj: dict[str, Any], step: WarmStartJobStatus, out: Outcome,
              now: dt.datetime) -> None:
        meta = wsj["metadata"]
        ns, name = meta["namespace"], meta["name"]
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
            waited = (now - parse_time(meta["creationTimestamp"])).total_seconds()
            if waited < self.config.lineage_grace_seconds and not step.job_name:
                raise Wait(JobReason.LINEAGE_NOT_FOUND, message + " (yet); waiting",
                           self.config.lineage_grace_seconds - waited + 0.5)
            raise Failure(JobReason.LINEAGE_NOT_FOUND, message)
        try:
            lineage = ModelLineage.model_validate(lineage_obj)
        except ValidationError as exc:
            # Stored under an older, laxer CRD: a reason naming the field, not a traceback.
            raise Failure("InvalidLineage", f"ModelLineage {spec.lineage_ref.name}: "
                          f"{trust.first_error(exc)}") from None
        if step.phase == JobPhase.REGISTERING and step.output is not None:
            self._read_verdict(wsj, spec, lineage, step, out, now)
            return
        job_name = naming.training_job(name)
        job = self.kube.get_job(ns, job_name)
        if job is None:
            if step.job_name:
                raise Failure("JobDeleted", f"training Job {job_name} was deleted before it "
                              "finished; create a new WarmStartJob to train again")
            self._start(wsj, spec, lineage, step, out, now)
            return
        owner = (job["metadata"].get("ownerReferences") or [{}])[0].get("uid")
        if owner != meta["uid"]:
            # A Job of an earlier WarmStartJob with this name is still being deleted.
            out.look_again(2.0)
            return
        step.job_name = job_name  # adopted after a crash between create and status write
        if bool(job["spec"].get("suspend")) != spec.suspend:
            self.kube.patch_job(ns, job_name, {"spec": {"suspend": spec.suspend}})
        outcome, reason = job_outcome(job)
        if outcome == "running":
            step.phase = JobPhase.QUEUED if spec.suspend else JobPhase.TRAINING
            step.start_time = step.start_time or now
            if not spec.suspend and imagepull.none_ready(job):
                self._check_image(ns, job_name, step, out, now)
            # Events of the Job bring this back; this is the safety net.
            out.look_again(self.config.poll_seconds * 6)
            return
        if outcome == "failed":
            detail = termination_reason(self.kube.job_pods(ns, job_name))
            why = {"BackoffLimitExceeded": JobReason.BACKOFF_LIMIT_EXCEEDED,
                   "DeadlineExceeded": JobReason.DEADLINE_EXCEEDED}.get(
                reason, JobReason.TRAINING_FAILED)
            raise Failure(why, f"training Job {job_name} failed ({reason})"
                          + (f": {detail}" if detail else ""))
        self._trained(wsj, spec, lineage, step, out, now)

    def _check_image(self, ns: str, job_name: str, step: WarmStartJobStatus, out: Outcome,
                     now: dt.datetime) -> None:
        """Ends the run when its pod cannot get its image; the Job is suspended so the
        kubelet stops pulling and the pod goes."""
        failure = imagepull.pull_failure(self.kube.job_pods(ns, job_name))
        if failure is None:
            return
        left = imagepull.grace_left(failure, step.start_time or now, now,
                                    self.config.image_pull_grace_seconds)
        if left > 0:
            out.look_again(left)
            return
        self.kube.patch_job(ns, job_name, {"spec": {"suspend": True}})
        raise Failure(JobReason.IMAGE_PULL_FAILED,
                      f"training Job {job_name}: {failure.describe()}")

    def _start(self, wsj: dict[str, Any], spec: WarmStartJobSpec, lineage: ModelLineage,
               step: WarmStartJobStatus, out: Outcome, now: dt.datetime) -> None:
        meta = wsj["metadata"]
        ns, name, generation = meta["namespace"], meta["name"], meta.get("generation")
        # Trust boundary: checked on every look before the Job exists (image and account
        # are mutable), so a Job never runs what the operator's installation does not allow.
        refusal = trust.trainer_pod(spec.image, spec.service_account_name,
                                    self.config.trainer_image, self.config.allowed_trainer_images,
                                    self.config.allowed_service_accounts)
        if refusal:
            raise Failure(refusal.reason, refusal.message)
        if step.parent is None or not step.parent.manifest_digest:
            me = trust.Claimant.of(lineage.to_api())
            if me and (refusal := trust.storage_claim(me, self.claimants(ns))):
                raise Failure(refusal.reason, refusal.message)
            # Object storage is read once per job, here: a Queued job waits without
            # touching S3 again.
            store = jobinputs.storage(self.stores, ns, lineage)
            parent = jobinputs.resolve_parent(spec, lineage, store)
            jobinputs.check_dataset(store, spec)
            step.parent = parent
            step.phase = JobPhase.PENDING
            step.conditions = set_condition(step.conditions or [], condition(
                JobConditionType.PARENT_RESOLVED, True, JobReason.PARENT_RESOLVED,
                f"parent {parent.version} ({parent.manifest_digest}) verified", generation,
                now))
            # No Event here: the condition says it, and TrainingStarted names the parent
            # (one Event fewer per job keeps a job's life at 10 API writes).
            # Persist the resolution before creating anything: the Job trains from exactly
            # this parent even if serving changes in between, and a crash right after this
            # write resumes from it.
            if spec.suspend:
                # A suspended job creates nothing: it parks in the same write.
                out.after_write.append(
                    lambda: failpoints.crash_point(failpoints.AFTER_PARENT_RESOLVED))
            else:
                step.observed_generation = generation
                out.write_now(step.to_api())
                failpoints.crash_point(failpoints.AFTER_PARENT_RESOLVED)
                wsj = out.obj or wsj
        if spec.suspend:
            step.phase = JobPhase.QUEUED
            step.conditions = set_condition(step.conditions or [], condition(
                JobConditionType.COMPLETE, False, JobReason.SUSPENDED, "spec.suspend is true",
                generation, now))
            return  # its own spec change brings it back
        lineage_name = spec.lineage_ref.name
        with self._lock((ns, lineage_name)):
            refs = self.jobs_of(ns, lineage_name)
            admitted = self._admitted[(ns, lineage_name)]
            # Drop what the index has caught up with (started, finished or gone).
            seen = {r.name: r for r in refs}
            admitted -= {n for n in admitted if n not in seen or seen[n].job_name
                         or seen[n].finished}
            ahead = queue_position(refs, name, self.config.max_active_per_lineage, admitted)
            if ahead is not None:
                if step.phase != JobPhase.QUEUED:
                    out.event(JobReason.LINEAGE_BUSY, f"Queued: {ahead} of lineage "
                              f"{lineage_name} must start first")
                step.phase = JobPhase.QUEUED
                return  # a freed slot enqueues it (jobindex.next_waiting)
            self._create_training(wsj, spec, lineage, step, out, now)
            admitted.add(name)

    def _create_training(self, wsj: dict[str, Any], spec: WarmStartJobSpec,
                         lineage: ModelLineage, step: WarmStartJobStatus, out: Outcome,
                         now: dt.datetime) -> None:
        """The one place a training Job is created (admission checks hook in here)."""
        name = wsj["metadata"]["name"]
        parent = step.parent
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
        job = signatures.add_signing(builders.training_job(
            wsj, spec, lineage.metadata["name"], lineage.spec.storage.secret_ref.name,
            self.config), lineage.spec, spec.image or self.config.trainer_image)
        created = self.kube.create_job(job)
        failpoints.crash_point(failpoints.AFTER_JOB_CREATED)
        step.job_name = job["metadata"]["name"]
        step.phase = JobPhase.TRAINING
        step.start_time = step.start_time or now
        if created is not None:
            out.event("TrainingStarted", f"Created Job {job['metadata']['name']} to train "
                      f"{tspec.version} from {parent.version} at {parent.uri} "
                      f"({parent.manifest_digest}, verified)")
            self.metrics.jobs_started.labels(namespace=wsj["metadata"]["namespace"]).inc()
        out.look_again(self.config.poll_seconds * 6)

    def _trained(self, wsj: dict[str, Any], spec: WarmStartJobSpec, lineage: ModelLineage,
                 step: WarmStartJobStatus, out: Outcome, now: dt.datetime) -> None:
        """The training Job completed: read and check its manifest, then hand it to the
        lineage to record (Registering)."""
        meta = wsj["metadata"]
        version = naming.version_name(meta["name"])
        uri = record.version_uri(lineage.spec.storage.uri, version)
        store = jobinputs.storage(self.stores, meta["namespace"], lineage)
        try:
            child = objectstore.read_manifest(store, uri)
        except (StorageError, record.RecordError) as exc:
            raise Failure(JobReason.OUTPUT_MANIFEST_INVALID,
                          f"the trainer finished but its manifest at {uri} is unusable: {exc}"
                          ) from None
        expected = step.parent.manifest_digest if step.parent else None
        # A cold start names the version it started beside as comparedWith, not as parent.
        started_beside = child.manifest.parent or child.manifest.compared_with
        got = started_beside.manifest_digest if started_beside else None
        if expected and got != expected:
            raise Failure(JobReason.OUTPUT_MANIFEST_INVALID,
                          f"{uri}manifest.json names parent digest {got}, but the run "
                          f"started from {expected}: the hash chain is broken")
        try:  # a version whose signature does not hold is never handed on to be recorded
            signatures.verify_version(store, lineage.spec, version, uri, child.raw)
        except signatures.SignatureRefused as exc:
            raise Failure(exc.reason, f"not recording it: {exc}") from None
        existing = lineage_index.find(lineage.status, version)
        if existing is not None and existing.manifest_digest != child.digest:
            raise Failure("VersionExists", f'lineage {lineage.metadata["name"]} already has a '
                          f'version "{version}" with another manifest; rename the WarmStartJob')
        summarise(step, child, spec, lineage, self.metrics)
        step.output = JobOutput(version=version, uri=uri, manifest_digest=child.digest)
        step.phase = JobPhase.REGISTERING
        step.conditions = set_condition(step.conditions or [], condition(
            JobConditionType.TRAINED, True, JobReason.TRAINING_SUCCEEDED,
            f"version {version} verified ({child.digest}); the lineage records it",
            meta.get("generation"), now))
        if warning := majority_class_warning(child, meta.get("generation"), now):
            step.conditions = set_condition(step.conditions, warning)
        out.look_again(SAFETY_NET_SECONDS)

    def _read_verdict(self, wsj: dict[str, Any], spec: WarmStartJobSpec,
                      lineage: ModelLineage, step: WarmStartJobStatus, out: Outcome,
                      now: dt.datetime) -> None:
        """The lineage recorded the version (or not yet): end with its verdict."""
        assert step.output is not None and step.output.version
        meta = wsj["metadata"]
        ns, generation = meta["namespace"], meta.get("generation")
        version = step.output.version
        entry = lineage_index.find(lineage.status, version)
        if entry is None:
            out.look_again(SAFETY_NET_SECONDS)  # the lineage's status change wakes it
            return
        if entry.manifest_digest != step.output.manifest_digest:
            raise Failure("VersionExists", f'lineage {lineage.metadata["name"]} already has a '
                          f'version "{version}" with another manifest; rename the WarmStartJob')
        passed = entry.phase != VersionPhase.REJECTED
        gate_reason, _, gate_message = (entry.reason or "").partition(": ")
        step.conditions = set_condition(step.conditions or [], condition(
            JobConditionType.GATE_PASSED, passed, gate_reason or "Unknown", gate_message,
            generation, now))
        step.completion_time = now
        # One Event for the end of the run, whatever the verdict.
        recorded = (f"Version {version} recorded in lineage {lineage.metadata['name']} "
                    f"({entry.manifest_digest})")
        if not passed:
            step.phase = JobPhase.REJECTED
            self.metrics.jobs_finished.labels(namespace=ns, result="Rejected").inc()
            out.event("GateRejected", f"{recorded}; rejected by the gate: {gate_message}",
                      warning=True)
            return
        policy = policy_of(spec, lineage)
        promoted = policy == JobPromotion.AUTO
        step.conditions = set_condition(step.conditions, condition(
            JobConditionType.PROMOTED, promoted,
            JobReason.PROMOTED if promoted else (
                JobReason.PROMOTION_DISABLED if policy == JobPromotion.NEVER
                else JobReason.AWAITING_APPROVAL),
            f"version {version} is the lineage's desired serving version" if promoted else
            f"version {version} passed the gate; promotion policy is {policy.value}",
            generation, now))
        step.phase = JobPhase.SUCCEEDED
        self.metrics.jobs_finished.labels(namespace=ns, result="Succeeded").inc()
        if promoted:
            out.event("Promoted", f"{recorded}; it passed the gate and is being rolled out")
        else:
            out.event("VersionRegistered", f"{recorded}; it passed the gate (promotion policy "
                      f"{policy.value})")

    # -- helpers ----------------------------------------------------------------------
    def _lock(self, key: tuple[str, str]) -> threading.Lock:
        # Two workers may admit jobs of one lineage at once: one admission at a time.
        with self._guard:
            return self._lineage_locks[key]

    def _fail(self, wsj: dict[str, Any], step: WarmStartJobStatus, out: Outcome, reason: str,
              message: str, now: dt.datetime) -> None:
        meta = wsj["metadata"]
        step.phase = JobPhase.FAILED
        step.completion_time = now
        step.conditions = set_condition(step.conditions or [], condition(
            JobConditionType.FAILED, True, reason, message, meta.get("generation"), now))
        out.event(reason, message, warning=True)
        out.requeue_after = None
        self.metrics.jobs_finished.labels(namespace=meta["namespace"], result="Failed").inc()
        log.info("WarmStartJob %s/%s failed: %s: %s", meta["namespace"], meta["name"], reason,
                 message)

