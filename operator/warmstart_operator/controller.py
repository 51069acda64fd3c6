"""The controller: one work queue, two reconcilers, one writer per status.

Events only enqueue keys (`on_*_event`, called by the Kopf handlers and by the in-memory
test harness alike); workers take keys from the queue and call `process`, which runs the
key's reconciler, writes the object's status once if it changed, runs what must follow the
write, posts the events and schedules the next look. A reconcile that raised is retried
after a per-key exponential back-off, shown in `warmstart_reconcile_backoff_seconds`.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from warmstart.api.constants import (
    MODELLINEAGE_KIND,
    MODELLINEAGE_PLURAL,
    WARMSTARTJOB_KIND,
    WARMSTARTJOB_PLURAL,
)
from warmstart_operator import objectstore, trust
from warmstart_operator.cluster import Cluster, Conflict, PermissionDenied
from warmstart_operator.config import OperatorConfig
from warmstart_operator.jobflow import JobReconciler
from warmstart_operator.jobindex import JobsOf, frees_slot, next_waiting, ref_from_body
from warmstart_operator.lineageflow import LineageReconciler
from warmstart_operator.metrics import Metrics
from warmstart_operator.outcome import Outcome, to_datetime
from warmstart_operator.permissions import permission_status
from warmstart_operator.readcache import CachedReads
from warmstart_operator.workqueue import Key, WorkQueue

log = logging.getLogger("warmstart")

_PLURAL = {WARMSTARTJOB_KIND: WARMSTARTJOB_PLURAL, MODELLINEAGE_KIND: MODELLINEAGE_PLURAL}


class Controller:
    def __init__(self, kube: Cluster, config: OperatorConfig, metrics: Metrics,
                 jobs_of: JobsOf, claimants: trust.ClaimantsIn,
                 clock: Callable[[], float] = time.time,
                 store_factory: Callable[[Mapping[str, str]], objectstore.ObjectStore] = (
                     objectstore.s3_store)) -> None:
        # Reads of the watched kinds come from the watches (readcache.py).
        self.cache = CachedReads(kube)
        kube = self.cache
        self.kube: Cluster = kube
        self.config = config
        self.metrics = metrics
        self.jobs_of = jobs_of
        self.claimants = claimants
        self.clock = clock
        self.queue: WorkQueue[Key] = WorkQueue(clock)
        stores = objectstore.StoreCache(kube, store_factory)
        self.jobs = JobReconciler(
            kube, config, metrics, jobs_of, stores, claimants,
            status_writer=lambda obj, status: kube.replace_status(WARMSTARTJOB_PLURAL, obj,
                                                                  status))
        self.lineages = LineageReconciler(kube, config, metrics, jobs_of, stores, claimants)

    def now(self) -> dt.datetime:
        return to_datetime(self.clock())

    # -- events: only enqueue keys --------------------------------------------------------
    def on_wsj_event(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        self.cache.observe(WARMSTARTJOB_KIND, event_type, body)
        meta = body.get("metadata") or {}
        ns, name = meta.get("namespace"), meta.get("name")
        ref = ref_from_body(body)
        if not ns or not name:
            return
        if event_type != "DELETED" and _spec_news(event_type, body):
            self.queue.add(Key(WARMSTARTJOB_KIND, ns, name))
        if ref is None:
            return
        if ref.registering:
            self.queue.add(Key(MODELLINEAGE_KIND, ns, ref.lineage))
        if frees_slot(event_type or "", ref):
            others = [r for r in self.jobs_of(ns, ref.lineage) if r.name != name]
            for waiting in next_waiting(others, self.config.max_active_per_lineage):
                self.queue.add(Key(WARMSTARTJOB_KIND, ns, waiting))

    def on_job_event(self, body: Mapping[str, Any], event_type: str | None = None) -> None:
        self.cache.observe("Job", event_type, body)
        meta = body.get("metadata") or {}
        for owner in meta.get("ownerReferences") or []:
            if owner.get("kind") == WARMSTARTJOB_KIND and meta.get("namespace"):
                self.queue.add(Key(WARMSTARTJOB_KIND, meta["namespace"], owner["name"]))

    def on_lineage_event(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        self.cache.observe(MODELLINEAGE_KIND, event_type, body)
        meta = body.get("metadata") or {}
        ns, name = meta.get("namespace"), meta.get("name")
        if not ns or not name:
            return
        if event_type == "DELETED":
            # A storage prefix it held may pass to a lineage that was refused it.
            gone = trust.Claimant.of({**body, "metadata": {**meta, "deletionTimestamp": None}})
            for other in self.claimants(ns):
                if gone and other.name != name and trust.prefixes_overlap(
                        gone.storage_uri, other.storage_uri):
                    self.queue.add(Key(MODELLINEAGE_KIND, ns, other.name))
            return
        if _spec_news(event_type, body):
            self.queue.add(Key(MODELLINEAGE_KIND, ns, name))
        # Its jobs wait on its status: the base registered, their version recorded.
        for ref in self.jobs_of(ns, name):
            if not ref.finished and not ref.suspend and (
                    ref.phase in (None, "Pending") or ref.registering):
                self.queue.add(Key(WARMSTARTJOB_KIND, ns, ref.name))

    # -- workers ----------------------------------------------------------------------------
    def process(self, key: Key) -> None:
        """One reconcile of one key; never raises."""
        try:
            with self.metrics.reconcile_timer(key.kind):
                self._reconcile_and_write(key)
        except Conflict:
            # The object changed since it was read: look again at the fresh one.
            self.queue.add(key)
        except PermissionDenied as exc:
            # Loud and specific: a missing RBAC rule must never look like a stall.
            log.error("%s: %s", key, exc)
            self._report_permission(key, str(exc))
            self._back_off(key)
        except Exception:
            log.exception("%s: reconcile failed; retrying after a back-off", key)
            self._back_off(key)
        else:
            self.queue.forget(key)
            self.metrics.clear_backoff(key.kind, key.namespace, key.name)
        finally:
            self.queue.done(key)

    def _reconcile_and_write(self, key: Key) -> None:
        reconciler = self.jobs if key.kind == WARMSTARTJOB_KIND else self.lineages
        out = reconciler.reconcile(key, self.now())
        if out.obj is None:
            return
        changed = self._write(key, out) or out.written
        for action in out.after_write:
            action()
        # Events mark transitions: a reconcile that changed nothing has nothing to announce.
        if changed:
            component = "warmstartjob-controller" if key.kind == WARMSTARTJOB_KIND else \
                "modellineage-controller"
            for kind, reason, message in out.events:
                self.kube.post_event(out.obj, kind, reason, message, component)
        if out.requeue_after is not None:
            self.queue.add_after(key, out.requeue_after)

    def _write(self, key: Key, out: Outcome) -> bool:
        """The one place a status is written."""
        assert out.obj is not None
        if out.status is None or out.status == (out.obj.get("status") or {}):
            return False
        self.kube.replace_status(_PLURAL[key.kind], out.obj, out.status)
        return True

    def _back_off(self, key: Key) -> None:
        delay = self.queue.add_rate_limited(key)
        self.metrics.set_backoff(key.kind, key.namespace, key.name, delay)

    def _report_permission(self, key: Key, message: str) -> None:
        try:
            obj = self.kube.get_wsj(key.namespace, key.name) if key.kind == WARMSTARTJOB_KIND \
                else self.kube.get_lineage(key.namespace, key.name)
            if obj is None:
                return
            self.kube.post_event(obj, "Warning", "PermissionDenied", message, "operator")
            self.kube.replace_status(_PLURAL[key.kind], obj,
                                     permission_status(key.kind, obj, message, self.now()))
        except Exception as exc:  # the rule missing may be this very one
            log.debug("permission error not recorded on %s: %s", key, exc)

    def run_worker(self, stop: threading.Event) -> None:
        while not stop.is_set():
            key = self.queue.get(timeout=1.0)
            if key is not None:
                self.process(key)


def _spec_news(event_type: str | None, body: Mapping[str, Any]) -> bool:
    """Whether an event can ask for anything new: the object is new to us (listing at start,
    creation) or its spec changed since its status was written. Our own status writes come
    back as events too; they need no reconcile (the reconcile that wrote them said when to
    look again)."""
    if event_type in (None, "ADDED"):
        return True
    generation = (body.get("metadata") or {}).get("generation")
    observed = (body.get("status") or {}).get("observedGeneration")
    return generation != observed


__all__ = ["Controller", "Key"]
