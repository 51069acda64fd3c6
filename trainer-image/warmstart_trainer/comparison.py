"""What the manifest's ``metrics`` say: candidate and parent on the same sets, the learning
curve of every run the trainer made, and whether the candidate only learned the class prior.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from warmstart_trainer.data import EncodedSet, LabelledSet, TextTokenizer, encode_set
from warmstart_trainer.evaluate import EvalResult, evaluate
from warmstart_trainer.modeling import load_classifier, move_to
from warmstart_trainer.parentcheck import loading_parent
from warmstart_trainer.train_loop import LoopResult

log = logging.getLogger(__name__)

# A candidate giving one class to at least this share of the holdout examples is flagged:
# it ended at (or next to) the majority class, and its accuracy is the class prior's.
MAJORITY_SHARE = 0.95


@dataclass(frozen=True)
class EvalSets:
    validation: LabelledSet
    holdout: LabelledSet | None
    replays: tuple[LabelledSet, ...]


@dataclass(frozen=True)
class Run:
    """One training run of a sweep (or the only run)."""

    learning_rate: float
    result: LoopResult


def curves(runs: Sequence[Run], chosen: Run) -> list[dict[str, Any]]:
    """The validation curve of each run, the chosen one marked."""
    out = []
    for run in runs:
        progress = run.result.progress
        points = [
            {
                "step": e["step"],
                "epoch": round(e["step"] / run.result.steps_per_epoch, 3),
                "validationLoss": e["validationLoss"],
                "accuracy": e.get("accuracy"),
                "f1": e.get("f1"),
                "trainSeconds": e.get("trainSeconds"),
            }
            for e in run.result.evaluations
        ]
        out.append(
            {
                "learningRate": run.learning_rate,
                "chosen": run is chosen,
                "steps": progress.step,
                "bestStep": progress.best_step,
                "bestValidationLoss": progress.best_loss,
                "stoppedEarly": progress.stopped_early,
                "trainSeconds": round(progress.train_seconds, 3),
                "points": points,
            }
        )
    return out


def majority_class(result: EvalResult | None, labels: Sequence[str]) -> dict[str, Any]:
    counts = result.predicted_counts if result is not None else ()
    total = sum(counts)
    if not total:
        return {"flagged": False}
    top = max(range(len(counts)), key=lambda index: counts[index])
    share = counts[top] / total
    return {"flagged": share >= MAJORITY_SHARE, "label": labels[top], "share": round(share, 4)}


def evaluate_versions(
    *,
    candidate: torch.nn.Module,
    parent_dir: Path | None,
    parent_labels_match: bool,
    sets: EvalSets,
    tokenizer: TextTokenizer,
    device: torch.device,
    batch_size: int,
    labels: tuple[str, ...],
) -> dict[str, Any]:
    """Candidate and parent on the holdout and each replay set, on the same examples.

    A parent without a trained head for these labels (a base checkpoint) has nothing to
    compare: its metrics are null and the reason is recorded.
    """
    parent_model = None
    if parent_dir is not None and parent_labels_match:
        with loading_parent(f"parent at {parent_dir}"):
            parent_model = load_classifier(parent_dir, labels)
        move_to(parent_model, device)

    def run(model: torch.nn.Module | None, data: EncodedSet) -> EvalResult | None:
        if model is None:
            return None
        return evaluate(
            model,
            data,
            batch_size=batch_size,
            pad_token_id=tokenizer.pad_token_id,
            num_classes=len(labels),
            device=device,
        )

    def score(model: torch.nn.Module | None, data: EncodedSet) -> dict[str, Any] | None:
        result = run(model, data)
        return result.to_json() if result is not None else None

    move_to(candidate, device)
    holdout = sets.holdout or sets.validation
    holdout_set = encode_set(holdout, tokenizer)
    candidate_holdout = run(candidate, holdout_set)
    report: dict[str, Any] = {
        "holdout": {
            "uri": holdout.source,
            "fromValidation": sets.holdout is None,
            "candidate": candidate_holdout.to_json() if candidate_holdout else None,
            "parent": score(parent_model, holdout_set),
        },
        "replay": [],
        "validation": {"candidate": score(candidate, encode_set(sets.validation, tokenizer))},
        "parentEvaluated": parent_model is not None,
        "majorityClass": majority_class(candidate_holdout, labels),
    }
    if parent_model is None:
        report["parentNotEvaluatedReason"] = (
            "the parent has no classification head trained for these labels"
        )
    for replay in sets.replays:
        replay_set = encode_set(replay, tokenizer)
        report["replay"].append(
            {
                "uri": replay.source,
                "candidate": score(candidate, replay_set),
                "parent": score(parent_model, replay_set),
            }
        )
    log.info(
        "evaluated candidate%s on holdout %s: %s",
        " and parent" if parent_model is not None else "",
        holdout.source,
        report["holdout"],
    )
    if report["majorityClass"]["flagged"]:
        log.warning(
            "the candidate predicts %r for %.0f%% of the holdout set: it learned the class "
            "prior, not the task; its comparison says so",
            report["majorityClass"]["label"],
            100 * report["majorityClass"]["share"],
        )
    return report
