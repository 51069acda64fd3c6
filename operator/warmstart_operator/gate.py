"""The promotion gate: does a candidate earn the right to replace what is serving?

Pure: the inputs are metric values measured by the trainer on the lineage's fixed holdout
(candidate and reference on the same examples) and on each replay set; the output is a
verdict with a reason a person can read in `kubectl describe`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from warmstart.api.common import MetricValues
from warmstart.api.constants import Metric, MetricMode
from warmstart.api.modellineage import Promotion


@dataclass(frozen=True)
class ReplayResult:
    uri: str
    candidate: MetricValues | None
    parent: MetricValues | None


@dataclass(frozen=True)
class Verdict:
    passed: bool
    reason: str
    message: str


def metric_of(values: MetricValues | None, metric: Metric) -> float | None:
    if values is None:
        return None
    value = getattr(values, metric.value)
    return None if value is None else float(value)


def _better_by(candidate: float, reference: float, mode: MetricMode) -> float:
    """How much better the candidate is (negative: worse), whatever the direction."""
    return candidate - reference if mode == MetricMode.MAX else reference - candidate


def decide(
    promotion: Promotion,
    candidate: MetricValues | None,
    reference: MetricValues | None,
    reference_name: str,
    replays: Sequence[ReplayResult] = (),
) -> Verdict:
    """Applies minValue, minImprovement over the reference, and maxReplayRegression."""
    metric, mode = promotion.metric, promotion.effective_mode()
    value = metric_of(candidate, metric)
    if value is None:
        return Verdict(False, "MetricMissing",
                       f"the trainer reported no {metric.value} for the candidate")
    if promotion.min_value is not None:
        bar = promotion.min_value
        if (mode == MetricMode.MAX and value < bar) or (mode == MetricMode.MIN and value > bar):
            word = "below" if mode == MetricMode.MAX else "above"
            return Verdict(False, "BelowMinValue",
                           f"{metric.value} {value:.4f} is {word} minValue {bar:.4f}")
    ref = metric_of(reference, metric)
    if ref is not None:
        gain = _better_by(value, ref, mode)
        if gain < promotion.min_improvement - 1e-12:
            return Verdict(
                False, "InsufficientImprovement",
                f"{metric.value} {value:.4f} vs {ref:.4f} for {reference_name} "
                f"(improvement {gain:+.4f}, need at least {promotion.min_improvement:.4f})",
            )
    if promotion.max_replay_regression is not None:
        for replay in replays:
            cand, par = metric_of(replay.candidate, metric), metric_of(replay.parent, metric)
            if cand is None or par is None:
                continue
            regression = -_better_by(cand, par, mode)
            if regression > promotion.max_replay_regression + 1e-12:
                return Verdict(
                    False, "ReplayRegression",
                    f"{metric.value} on replay set {replay.uri} fell from {par:.4f} to "
                    f"{cand:.4f} (more than maxReplayRegression "
                    f"{promotion.max_replay_regression:.4f}): the candidate forgot",
                )
    detail = f"{metric.value} {value:.4f}"
    if ref is not None:
        detail += f" vs {ref:.4f} for {reference_name}"
    return Verdict(True, "GatePassed", detail)
