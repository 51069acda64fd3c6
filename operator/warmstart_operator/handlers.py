"""Kopf wiring: thin handlers that hand each object to its reconciler.

Event handlers react at once (and run for every object when the operator starts, which is
how work interrupted by a crash resumes); timers are the safety net that re-reconciles
objects whose children changed without an event reaching us, each object only once its
reconciler's own "look again in" has passed (pacing.py). No on.create/update handlers:
a level-triggered reconcile needs no per-handler progress; Kopf's timers do keep a finalizer
on each object while they run.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import kopf
from prometheus_client import start_http_server

from warmstart.api.constants import (
    GROUP,
    MODELLINEAGE_KIND,
    MODELLINEAGE_PLURAL,
    TERMINAL_JOB_PHASES,
    VERSION,
    WARMSTARTJOB_KIND,
    WARMSTARTJOB_PLURAL,
)
from warmstart_operator.builders import MANAGED_BY
from warmstart_operator.config import OperatorConfig
from warmstart_operator.jobflow import JobReconciler
from warmstart_operator.kube import Kube, PermissionDenied
from warmstart_operator.lineageflow import LineageReconciler
from warmstart_operator.metrics import Metrics
from warmstart_operator.pacing import Pacer
from warmstart_operator.permissions import report_permission_error
from warmstart_operator.queuewake import freed_lineage

log = logging.getLogger("warmstart")
_POLL = float(os.environ.get("WARMSTART_POLL_SECONDS", "5"))


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    config = OperatorConfig.from_env()
    settings.peering.standalone = True
    # The reconcilers post their own Events, one per transition; Kopf's per-handler
    # events would only add noise.
    settings.posting.enabled = False
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.execution.max_workers = 16
    # Timers hold a finalizer; let a deleted object go within seconds, not a minute.
    settings.background.instant_exit_timeout = 5
    # Status has no room for Kopf's own bookkeeping (the schema prunes unknown fields).
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(
        prefix="warmstart.dev")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="warmstart.dev")
    metrics = Metrics()
    kube = Kube.connect()
    kube.on_request = metrics.api_requests.inc
    memo.kube = kube
    memo.metrics = metrics
    memo.jobs = JobReconciler(kube, config, metrics)
    memo.lineages = LineageReconciler(kube, config, metrics)
    memo.pacer = Pacer()
    address = os.environ.get("WARMSTART_METRICS_ADDRESS", "0.0.0.0")  # noqa: S104
    start_http_server(config.metrics_port, addr=address, registry=metrics.registry)
    log.info("warmstart operator started; metrics on %s:%s", address, config.metrics_port)


def _run(kind: str, namespace: str | None, name: str | None, memo: kopf.Memo) -> None:
    if not namespace or not name:
        return  # both kinds are namespaced; anything else is not ours
    reconcile = memo.jobs.reconcile if kind == WARMSTARTJOB_KIND else memo.lineages.reconcile
    try:
        memo.pacer.next_look((kind, namespace, name), reconcile(namespace, name))
    except PermissionDenied as exc:
        # Loud and specific: a missing RBAC rule must never look like a stalled job. Said
        # in the log, as a Warning Event and as a condition, whichever the rules allow.
        log.error("%s %s/%s: %s", kind, namespace, name, exc)
        report_permission_error(memo.kube, kind, namespace, name, str(exc))
        raise kopf.TemporaryError(str(exc), delay=30) from None


def _due(kind: str, namespace: str | None, name: str | None, memo: kopf.Memo) -> bool:
    return bool(namespace and name and memo.pacer.due((kind, namespace, name)))


@kopf.on.event(GROUP, VERSION, WARMSTARTJOB_PLURAL)
def warmstartjob_event(type: str, body: kopf.Body, namespace: str | None, name: str | None,
                       memo: kopf.Memo, **_: Any) -> None:
    if not namespace or not name:
        return
    if type != "DELETED":
        _run(WARMSTARTJOB_KIND, namespace, name, memo)
    lineage = freed_lineage(type or "", body)
    ended = (body.get("status") or {}).get("phase") in TERMINAL_JOB_PHASES
    if lineage and (not ended or memo.jobs.queue.first_end(namespace, name)):
        # Hand the freed slot to the next queued jobs now, not at their next timer tick.
        for waiting in memo.jobs.queue.wake(namespace, lineage,
                                            memo.jobs.config.max_active_per_lineage):
            _run(WARMSTARTJOB_KIND, namespace, waiting, memo)
    if type == "DELETED":
        memo.jobs.queue.forget(namespace, name)
        memo.pacer.forget((WARMSTARTJOB_KIND, namespace, name))


def _unfinished(status: kopf.Status, **_: Any) -> bool:
    return status.get("phase") not in TERMINAL_JOB_PHASES


@kopf.timer(GROUP, VERSION, WARMSTARTJOB_PLURAL, interval=_POLL * 3, when=_unfinished,
            backoff=_POLL)
def warmstartjob_timer(namespace: str | None, name: str | None, memo: kopf.Memo,
                       **_: Any) -> None:
    if namespace and name and not memo.jobs.queue.should_look(namespace, name):
        return  # parked in the queue: woken by the event that frees its slot
    if _due(WARMSTARTJOB_KIND, namespace, name, memo):
        _run(WARMSTARTJOB_KIND, namespace, name, memo)


@kopf.on.event("batch", "v1", "jobs", labels={"app.kubernetes.io/managed-by": MANAGED_BY})
def training_job_event(body: kopf.Body, namespace: str | None, memo: kopf.Memo,
                       **_: Any) -> None:
    for owner in body.metadata.get("ownerReferences") or []:
        if owner.get("kind") == WARMSTARTJOB_KIND:
            _run(WARMSTARTJOB_KIND, namespace, owner["name"], memo)


@kopf.on.event(GROUP, VERSION, MODELLINEAGE_PLURAL)
def lineage_event(type: str, namespace: str | None, name: str | None, memo: kopf.Memo,
                  **_: Any) -> None:
    if type == "DELETED":
        if namespace and name:
            memo.pacer.forget((MODELLINEAGE_KIND, namespace, name))
        return
    _run(MODELLINEAGE_KIND, namespace, name, memo)


@kopf.timer(GROUP, VERSION, MODELLINEAGE_PLURAL, interval=_POLL, backoff=_POLL * 2)
def lineage_timer(namespace: str | None, name: str | None, memo: kopf.Memo, **_: Any) -> None:
    if _due(MODELLINEAGE_KIND, namespace, name, memo):
        _run(MODELLINEAGE_KIND, namespace, name, memo)


@kopf.on.probe(id="apiRequests")
def api_requests(memo: kopf.Memo, **_: Any) -> int:
    return int(memo.kube.requests)
