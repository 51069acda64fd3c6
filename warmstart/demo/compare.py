"""Warm start vs cold start, side by side, from what the operator recorded.

The WarmStartJob status has the holdout metrics and the training summary; the step at
which validation loss was best is in the version's manifest (training.bestStep), which the
demo reads from storage.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from warmstart.demo.console import table


@dataclass(frozen=True)
class RunResult:
    name: str
    cold: bool
    parent: str | None
    accuracy: float | None
    f1: float | None
    parent_accuracy: float | None
    replay_accuracy: float | None  # on the newest replay set: the previous week's
    best_step: int | None
    # Next to the step: a "best" that stayed near ln 2 = 0.693 (chance for two classes)
    # means the run never learned, however early or late it came.
    best_loss: float | None
    steps: int | None
    stopped_early: bool | None
    seconds: float | None

    @staticmethod
    def from_objects(wsj: Mapping[str, Any], manifest_training: Mapping[str, Any]
                     ) -> RunResult:
        status = wsj.get("status") or {}
        metrics = status.get("metrics") or {}
        candidate = metrics.get("candidate") or {}
        replays = metrics.get("replay") or []
        training = status.get("training") or {}
        return RunResult(
            name=str(wsj["metadata"]["name"]),
            cold=bool(wsj["spec"].get("coldStart")),
            parent=(status.get("parent") or {}).get("version"),
            accuracy=candidate.get("accuracy"),
            f1=candidate.get("f1"),
            parent_accuracy=(metrics.get("parent") or {}).get("accuracy"),
            replay_accuracy=((replays[-1].get("candidate") or {}).get("accuracy")
                             if replays else None),
            best_step=manifest_training.get("bestStep"),
            best_loss=training.get("bestValidationLoss"),
            steps=training.get("steps"),
            stopped_early=training.get("stoppedEarly"),
            seconds=training.get("seconds"),
        )


def _num(value: float | None, fmt: str = ".3f") -> str:
    return "-" if value is None else format(value, fmt)


def comparison(warm: RunResult, cold: RunResult, replay_label: str) -> list[str]:
    header = ["", "holdout accuracy", "macro-F1", f"{replay_label} accuracy",
              "steps to best val loss (loss)", "steps run", "training time"]
    rows = []
    for run in (warm, cold):
        start = "cold start (random init)" if run.cold else f"warm start from {run.parent}"
        ended = "early stop" if run.stopped_early else "epoch cap"
        rows.append([
            f"{start} [{run.name}]",
            _num(run.accuracy),
            _num(run.f1),
            _num(run.replay_accuracy),
            "-" if run.best_step is None else f"{run.best_step} ({_num(run.best_loss)})",
            "-" if run.steps is None else f"{run.steps} ({ended})",
            "-" if run.seconds is None else f"{run.seconds:.0f} s",
        ])
    lines = table(header, rows)
    if warm.parent_accuracy is not None:
        lines.append(f"(the parent, {warm.parent}, scores {warm.parent_accuracy:.3f} on the "
                     "same holdout)")
    return lines
