"""Prometheus metrics of the operator, served on /metrics."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from warmstart.api.constants import JobPhase


class Metrics:
    """One registry per operator (tests run several operators in one process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.jobs_started = Counter("warmstart_jobs_started_total",
                                    "Training Jobs created", ["namespace"], registry=r)
        self.jobs_finished = Counter("warmstart_jobs_finished_total",
                                     "WarmStartJobs that ended, by result",
                                     ["namespace", "result"], registry=r)
        self.job_phase = Gauge("warmstart_job_phase",
                               "1 for the phase each WarmStartJob is in",
                               ["namespace", "name", "phase"], registry=r)
        self.training_seconds = Histogram(
            "warmstart_training_duration_seconds", "Training wall time per run", ["cold"],
            buckets=(5, 15, 30, 60, 120, 300, 600, 1200, 3600, 7200, 21600), registry=r)
        self.versions_registered = Counter("warmstart_versions_registered_total",
                                           "Versions recorded in a lineage",
                                           ["namespace", "lineage"], registry=r)
        self.promotions = Counter("warmstart_promotions_total",
                                  "Versions promoted to serving", ["namespace", "lineage"],
                                  registry=r)
        self.rollbacks = Counter("warmstart_rollbacks_total",
                                 "Automatic rollbacks of a failed rollout",
                                 ["namespace", "lineage"], registry=r)
        self.gate_rejections = Counter("warmstart_gate_rejections_total",
                                       "Candidates the promotion gate rejected",
                                       ["namespace", "lineage"], registry=r)
        self.model_metric = Gauge("warmstart_model_metric",
                                  "Holdout metric of each recorded version",
                                  ["namespace", "lineage", "version", "metric"], registry=r)
        self.serving_info = Gauge("warmstart_serving_version_info",
                                  "1 for the version each lineage serves",
                                  ["namespace", "lineage", "version"], registry=r)
        self.reconcile_duration = Histogram("warmstart_reconcile_duration_seconds",
                                            "Time per reconcile", ["kind"], registry=r)
        self.api_requests = Counter("warmstart_api_requests",
                                    "Requests the operator's reconcilers sent to the API server, "
                                    "by HTTP method (anything but GET is a write) and resource",
                                    ["method", "resource"],
                                    registry=r)
        self.reconcile_errors = Counter("warmstart_reconcile_errors_total",
                                        "Reconciles that raised", ["kind"], registry=r)

        self.reconcile_backoff = Gauge(
            "warmstart_reconcile_backoff_seconds",
            "Delay before the next retry of an object whose reconciles keep failing (absent: "
            "its last reconcile succeeded)", ["kind", "namespace", "name"], registry=r)

    def count_request(self, method: str, resource: str) -> None:
        self.api_requests.labels(method=method.upper(), resource=resource).inc()

    def set_backoff(self, kind: str, namespace: str, name: str, seconds: float) -> None:
        self.reconcile_backoff.labels(kind=kind, namespace=namespace, name=name).set(seconds)

    def clear_backoff(self, kind: str, namespace: str, name: str) -> None:
        with contextlib.suppress(KeyError):
            self.reconcile_backoff.remove(kind, namespace, name)

    @contextlib.contextmanager
    def reconcile_timer(self, kind: str) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        except Exception:
            self.reconcile_errors.labels(kind=kind).inc()
            raise
        finally:
            self.reconcile_duration.labels(kind=kind).observe(time.monotonic() - started)

    def set_phase(self, namespace: str, name: str, phase: JobPhase | None) -> None:
        for candidate in JobPhase:
            self.job_phase.labels(namespace=namespace, name=name, phase=candidate.value).set(
                1 if candidate == phase else 0)
