"""Accuracy, macro-F1 and loss of a classifier on a labelled set, in eval mode, without grads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from warmstart_trainer.data import EncodedSet, sequential_batches


@dataclass(frozen=True)
class EvalResult:
    loss: float
    accuracy: float
    f1: float  # macro-averaged over the lineage's classes
    examples: int
    # How many examples were predicted as each class (index order of the lineage's labels):
    # the majority-class check reads it.
    predicted_counts: tuple[int, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "loss": round(self.loss, 6),
            "accuracy": round(self.accuracy, 6),
            "f1": round(self.f1, 6),
            "examples": self.examples,
        }


def macro_f1(predictions: torch.Tensor, targets: torch.Tensor, num_classes: int) -> float:
    """Unweighted mean of per-class F1 over the classes that occur in targets or predictions
    (what scikit-learn's ``f1_score(average="macro")`` does by default)."""
    scores = []
    for cls in range(num_classes):
        predicted = predictions == cls
        actual = targets == cls
        true_positive = int((predicted & actual).sum())
        predicted_count = int(predicted.sum())
        actual_count = int(actual.sum())
        if predicted_count == 0 and actual_count == 0:
            continue
        scores.append(2 * true_positive / (predicted_count + actual_count))
    return sum(scores) / len(scores) if scores else 0.0


def autocast_context(device: torch.device) -> Any:
    """bf16 autocast on a CUDA device that supports it; a no-op context elsewhere.

    CPU autocast to bf16 is slower than fp32 on most CPUs and changes results, so the
    trainer never uses it there.
    """
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return torch.autocast(device_type=device.type, enabled=False)


def evaluate(
    model: torch.nn.Module,
    data: EncodedSet,
    *,
    batch_size: int,
    pad_token_id: int,
    num_classes: int,
    device: torch.device,
) -> EvalResult:
    was_training = model.training
    model.eval()
    total_loss = 0.0
    predictions: list[torch.Tensor] = []
    try:
        with torch.no_grad():
            for cpu_batch in sequential_batches(data, batch_size, pad_token_id):
                batch = cpu_batch.to(device)
                with autocast_context(device):
                    logits = model(
                        input_ids=batch.input_ids, attention_mask=batch.attention_mask
                    ).logits
                logits = logits.float()
                total_loss += float(F.cross_entropy(logits, batch.labels, reduction="sum"))
                predictions.append(logits.argmax(dim=-1).cpu())
    finally:
        model.train(was_training)
    predicted = torch.cat(predictions)
    targets = torch.tensor(data.labels, dtype=torch.long)
    count = len(data)
    return EvalResult(
        loss=total_loss / count,
        accuracy=float((predicted == targets).sum()) / count,
        f1=macro_f1(predicted, targets, num_classes),
        examples=count,
        predicted_counts=tuple(
            int(n) for n in torch.bincount(predicted, minlength=num_classes).tolist()
        ),
    )
