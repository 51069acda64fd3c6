"""A lineage's retraining schedule (WarmStartJobs created on cron ticks) and its retention
(old versions' weights deleted, manifests kept)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from croniter import croniter

from warmstart import record
from warmstart.api.constants import (
    API_VERSION,
    WARMSTARTJOB_KIND,
    ConcurrencyPolicy,
    JobPhase,
    VersionPhase,
)
from warmstart.api.modellineage import ModelLineage, ModelLineageStatus
from warmstart_operator import lineage_index, naming, objectstore
from warmstart_operator.cluster import Cluster
from warmstart_operator.jobindex import JobRef
from warmstart_operator.outcome import Outcome, parse_time

SCHEDULED_BY_LABEL = "warmstart.dev/scheduled-by"


def due_tick(schedule: str, tz: str | None, last: dt.datetime | None, created: dt.datetime,
             at: dt.datetime) -> dt.datetime | None:
    """The most recent schedule time in (last or created, at], if any (missed ones are
    collapsed into one run, like a CronJob)."""
    zone = ZoneInfo(tz) if tz else dt.UTC
    # A tick exactly at `at` counts (croniter's get_prev starts strictly before its start).
    start = at.astimezone(zone) + dt.timedelta(microseconds=1)
    previous: dt.datetime = croniter(schedule, start).get_prev(dt.datetime)
    since = last or created
    return previous.astimezone(dt.UTC) if previous > since else None


def run(kube: Cluster, lineage: ModelLineage, status: ModelLineageStatus, out: Outcome,
        refs: list[JobRef], now: dt.datetime) -> None:
    retraining = lineage.spec.retraining
    if retraining is None or retraining.suspend:
        return
    ns, name = lineage.metadata["namespace"], lineage.metadata["name"]
    created = parse_time(lineage.metadata["creationTimestamp"])
    tick = due_tick(retraining.schedule, retraining.time_zone, status.last_schedule_time,
                    created, now)
    zone = ZoneInfo(retraining.time_zone) if retraining.time_zone else dt.UTC
    upcoming: dt.datetime = croniter(retraining.schedule, now.astimezone(zone)).get_next(
        dt.datetime)
    out.look_again(max(1.0, (upcoming - now).total_seconds() + 0.5))
    if tick is None:
        return
    mine = [r for r in refs if r.scheduled_by == name]
    active = [r for r in mine if not r.finished]
    job_name = naming.scheduled_job(name, int(tick.timestamp()))
    if active and all(r.name != job_name for r in active):
        if retraining.concurrency_policy == ConcurrencyPolicy.FORBID:
            out.event("ScheduleSkipped", f"Skipped the run due at {tick.isoformat()}: "
                      f"{active[0].name} is still running (Forbid)")
            status.last_schedule_time = tick
            return
        for old in active:
            kube.delete_wsj(ns, old.name)
            out.event("ScheduleReplaced", f"Stopped {old.name} (Replace)")
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
    if kube.create_wsj(ns, body) is not None:
        out.event("ScheduledRun", f"Created WarmStartJob {job_name} for {tick.isoformat()}")
    status.last_schedule_time = tick
    status.last_scheduled_job = job_name
    _prune_history(kube, ns, mine, retraining.successful_jobs_history_limit,
                   retraining.failed_jobs_history_limit)


def _prune_history(kube: Cluster, ns: str, mine: list[JobRef], keep_ok: int,
                   keep_failed: int) -> None:
    finished = sorted((r for r in mine if r.finished), key=lambda r: r.created)
    failed = [r for r in finished if r.phase == JobPhase.FAILED]
    ok = [r for r in finished if r.phase != JobPhase.FAILED]
    for group, keep in ((ok, keep_ok), (failed, keep_failed)):
        for old in group[: max(0, len(group) - keep)]:
            kube.delete_wsj(ns, old.name)


def retain(stores: objectstore.StoreCache, lineage: ModelLineage, status: ModelLineageStatus,
           out: Outcome) -> None:
    """Retires the oldest unprotected versions beyond keepVersions."""
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
    store = stores.get(lineage.metadata["namespace"], lineage.spec.storage.secret_ref.name)
    for version in candidates:
        prefix = record.ensure_prefix(version.uri)
        deleted = 0
        for info in store.list(prefix):
            # The manifest stays: it is the record, and the hash chain runs through it.
            if info.uri != record.manifest_uri(prefix):
                store.delete(info.uri)
                deleted += 1
        lineage_index.set_phase(status, version.name, VersionPhase.RETIRED,
                                f"Retention: beyond keepVersions {keep}; weights deleted, "
                                "manifest kept")
        out.event("VersionRetired", f"Version {version.name} retired: {deleted} files "
                  "deleted, manifest kept")
