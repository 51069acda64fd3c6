"""Pure pieces of the WarmStartJob reconcile: its exceptions, reading a batch Job's outcome,
the promotion policy, and the run's summary from its manifest."""

from __future__ import annotations

import datetime as dt
from typing import Any

from warmstart.api.conditions import Condition, JobConditionType, JobReason
from warmstart.api.constants import JobPromotion, PromotionPolicy
from warmstart.api.modellineage import ModelLineage
from warmstart.api.warmstartjob import (
    JobMetrics,
    ReplayMetrics,
    TrainingSummary,
    WarmStartJobSpec,
    WarmStartJobStatus,
)
from warmstart_operator import gate, lineage_index
from warmstart_operator.metrics import Metrics
from warmstart_operator.objectstore import ReadManifest
from warmstart_operator.outcome import condition

# A job waiting on something no event announces (a lineage about to be created, a verdict
# whose event was missed) is looked at again after this long.
SAFETY_NET_SECONDS = 30.0


class Wait(Exception):
    """Not ready yet (e.g. the lineage is still registering its base): stay Pending."""

    def __init__(self, reason: str, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.reason = reason
        self.retry_after = retry_after


class Failure(Exception):
    """Ends the run as Failed with a condition reason and a message a person understands."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


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


def policy_of(spec: WarmStartJobSpec, lineage: ModelLineage) -> JobPromotion:
    """The job's own promotion setting, else the lineage's policy."""
    if spec.promotion is not None:
        return spec.promotion
    return (JobPromotion.AUTO if lineage.spec.promotion.policy == PromotionPolicy.AUTO
            else JobPromotion.MANUAL)


def summarise(step: WarmStartJobStatus, child: ReadManifest, spec: WarmStartJobSpec,
              lineage: ModelLineage, metrics: Metrics) -> None:
    """Metrics and training summary of the run, from its manifest, into the job's status."""
    metric = lineage.spec.promotion.metric
    cand = lineage_index.holdout_metrics(child.manifest, "candidate")
    par = lineage_index.holdout_metrics(child.manifest, "parent")
    value = gate.metric_of(cand, metric)
    ref = gate.metric_of(par, metric)
    summary = f"{metric.value} {value:.3f}" if value is not None else None
    if summary and ref is not None:
        summary += f" (parent {ref:.3f})"
    step.metrics = JobMetrics(
        metric=metric, candidate=cand, parent=par, summary=summary,
        replay=[ReplayMetrics(uri=r.uri[:1024], candidate=r.candidate, parent=r.parent)
                for r in lineage_index.replay_results(child.manifest)][:16] or None)
    t = child.manifest.training_report
    step.training = TrainingSummary(
        epochs=t.epochs, steps=t.steps, best_epoch=t.best_epoch,
        best_validation_loss=t.best_validation_loss, stopped_early=t.stopped_early,
        seconds=t.train_seconds, samples_per_second=t.samples_per_second)
    if step.training.seconds:
        metrics.training_seconds.labels(
            cold="true" if spec.cold_start else "false").observe(step.training.seconds)
    if value is not None:
        metrics.model_metric.labels(
            namespace=lineage.metadata["namespace"], lineage=lineage.metadata["name"],
            version=child.manifest.version, metric=metric.value).set(value)


def majority_class_warning(child: ReadManifest, generation: int | None,
                           now: dt.datetime) -> Condition | None:
    """A `MajorityClass` condition when the candidate predicts (nearly) one label for the
    whole holdout: it learned the class prior, and its comparison says little."""
    majority = child.manifest.evaluation.majority_class
    if majority is None or not majority.flagged:
        return None
    share = f"{100 * majority.share:.0f}%" if majority.share is not None else "nearly all"
    return condition(JobConditionType.MAJORITY_CLASS, True, JobReason.PREDICTS_ONE_CLASS,
                     f"the candidate predicts {majority.label!r} for {share} of the holdout: "
                     "it learned the class prior only; compare it with care", generation, now)
