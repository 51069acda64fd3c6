"""The optimisation loop: AdamW, warm-up + linear decay, clipping, early stopping, checkpoints.

Deterministic under a seed: the epoch order is a function of (seed, epoch), dropout draws
from torch's generator whose state travels in every progress checkpoint, so a run resumed
from step N continues exactly as the uninterrupted run would have (on the same device).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F

from warmstart_trainer.data import EncodedSet, batch_indices, collate, epoch_order
from warmstart_trainer.errors import TrainerError
from warmstart_trainer.evaluate import EvalResult, autocast_context, evaluate
from warmstart_trainer.logs import MetricsLog, ProgressReporter
from warmstart_trainer.modeling import restore_weights, snapshot_weights
from warmstart_trainer.progress import Checkpoint, TrainingProgress, capture_rng, restore_rng

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoopSettings:
    max_epochs: int
    batch_size: int
    learning_rate: float
    weight_decay: float
    warmup_ratio: float
    max_grad_norm: float
    patience: int
    min_delta: float
    seed: int
    eval_every_steps: int | None = None
    # Used when eval_every_steps is None: evaluations spread evenly over each epoch, the
    # last at its end (1 for a warm start, 2 for a cold one; see warmstart.trainspec).
    evals_per_epoch: int = 1
    checkpoint_every_steps: int = 0
    progress_interval_s: float = 10.0

    @property
    def eval_batch_size(self) -> int:
        return min(256, self.batch_size * 2)


@dataclass(frozen=True)
class LinearWarmupDecay:
    """Learning-rate factor: 0 -> 1 over ``warmup_steps``, then 1 -> 0 at ``total_steps``.

    A pure function of the step, so the scheduler's whole state is the step counter (kept
    in the progress checkpoint) and these two numbers.
    """

    warmup_steps: int
    total_steps: int

    def factor(self, step: int) -> float:
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        remaining = self.total_steps - step
        return max(0.0, remaining / max(1, self.total_steps - self.warmup_steps))

    def to_json(self) -> dict[str, Any]:
        return {"kind": "linear-warmup-decay", **asdict(self)}


def build_optimizer(
    model: torch.nn.Module, learning_rate: float, weight_decay: float
) -> torch.optim.AdamW:
    """AdamW without weight decay on biases and normalisation weights (BERT's recipe)."""
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        if parameter.ndim < 2 or "LayerNorm" in name or "layer_norm" in name:
            no_decay.append(parameter)
        else:
            decay.append(parameter)
    return torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=learning_rate,
    )


@dataclass(frozen=True)
class LoopResult:
    progress: TrainingProgress
    steps_per_epoch: int
    planned_steps: int
    resumed_from_step: int | None
    examples_per_second: float  # training steps only, this process
    best_validation: EvalResult | None

    @property
    def evaluations(self) -> list[dict[str, Any]]:
        """Every validation evaluation of the run, in step order (the learning curve)."""
        return list(self.progress.evaluations)

    def summary(self) -> dict[str, Any]:
        progress = self.progress
        return {
            "steps": progress.step,
            "epochs": round(progress.step / self.steps_per_epoch, 3),
            "stepsPerEpoch": self.steps_per_epoch,
            "bestStep": progress.best_step,
            "bestEpoch": progress.best_epoch,
            "bestValidationLoss": progress.best_loss,
            "stoppedEarly": progress.stopped_early,
            "trainSeconds": round(progress.train_seconds, 3),
            "examplesSeen": progress.examples_seen,
            "samplesPerSecond": round(self.examples_per_second, 2),
            "resumedFromStep": self.resumed_from_step,
        }


CheckpointSink = Callable[[Checkpoint], None]


class TrainingLoop:
    def __init__(
        self,
        model: torch.nn.Module,
        train: EncodedSet,
        validation: EncodedSet,
        settings: LoopSettings,
        *,
        pad_token_id: int,
        num_classes: int,
        device: torch.device,
        metrics: MetricsLog,
        spec_fingerprint: str,
        on_checkpoint: CheckpointSink | None = None,
    ) -> None:
        self.model = model.to(device)
        self.train_set = train
        self.validation_set = validation
        self.settings = settings
        self.pad_token_id = pad_token_id
        self.num_classes = num_classes
        self.device = device
        self.metrics = metrics
        self.spec_fingerprint = spec_fingerprint
        self.on_checkpoint = on_checkpoint
        self.steps_per_epoch = math.ceil(len(train) / settings.batch_size)
        self.eval_interval = settings.eval_every_steps or math.ceil(
            self.steps_per_epoch / max(1, settings.evals_per_epoch)
        )
        self.planned_steps = self.steps_per_epoch * settings.max_epochs
        self.schedule = LinearWarmupDecay(
            warmup_steps=math.ceil(settings.warmup_ratio * self.planned_steps),
            total_steps=self.planned_steps,
        )
        self.optimizer = build_optimizer(model, settings.learning_rate, settings.weight_decay)
        self.progress = TrainingProgress()
        self.best_weights: dict[str, torch.Tensor] | None = None
        self.best_validation: EvalResult | None = None
        self.resumed_from_step: int | None = None
        self._last_eval_step = -1

    # resume

    def restore(self, checkpoint: Checkpoint) -> None:
        if checkpoint.schedule != self.schedule.to_json():
            raise TrainerError(
                f"progress checkpoint schedule {checkpoint.schedule} does not match this run's "
                f"{self.schedule.to_json()}: the training data changed since it was written"
            )
        restore_weights(self.model, checkpoint.weights)
        self.optimizer.load_state_dict(checkpoint.optimizer_state)
        restore_rng(checkpoint.rng)
        self.progress = checkpoint.progress
        self.best_weights = checkpoint.best_weights
        self.resumed_from_step = checkpoint.progress.step
        self._last_eval_step = max((e["step"] for e in self.progress.evaluations), default=-1)

    def _checkpoint(self) -> Checkpoint:
        return Checkpoint(
            progress=self.progress,
            weights=snapshot_weights(self.model),
            best_weights=self.best_weights,
            optimizer_state=self.optimizer.state_dict(),
            schedule=self.schedule.to_json(),
            rng=capture_rng(),
            spec_fingerprint=self.spec_fingerprint,
        )

    # the loop

    def run(self) -> LoopResult:
        settings = self.settings
        progress = self.progress
        start_step = progress.step
        reporter = ProgressReporter(log, self.planned_steps, settings.progress_interval_s)
        self.metrics.write(
            "start",
            startStep=start_step,
            plannedSteps=self.planned_steps,
            stepsPerEpoch=self.steps_per_epoch,
            trainExamples=len(self.train_set),
            validationExamples=len(self.validation_set),
            device=str(self.device),
        )
        if start_step:
            log.info("resumed training at step %d (epoch %d)", start_step, progress.epoch + 1)
        run_seconds, run_examples, run_steps = 0.0, 0, 0
        self.model.train()
        while progress.epoch < settings.max_epochs and not progress.stopped_early:
            order = epoch_order(len(self.train_set), settings.seed, progress.epoch)
            batches = batch_indices(order, settings.batch_size)
            for index in range(progress.batch_in_epoch, len(batches)):
                started = time.perf_counter()
                loss, lr, size = self._train_step(batches[index])
                elapsed = time.perf_counter() - started
                run_seconds += elapsed
                run_examples += size
                run_steps += 1
                progress.step += 1
                progress.train_seconds += elapsed
                progress.examples_seen += size
                progress.batch_in_epoch = index + 1
                end_of_epoch = index + 1 == len(batches)
                if end_of_epoch:
                    progress.epoch += 1
                    progress.batch_in_epoch = 0
                throughput = run_examples / run_seconds if run_seconds else 0.0
                reporter.report(
                    step=progress.step,
                    epoch=progress.step / self.steps_per_epoch,
                    max_epochs=settings.max_epochs,
                    loss=loss,
                    lr=lr,
                    examples_per_second=throughput,
                    seconds_per_step=run_seconds / run_steps,
                    force=run_steps == 1 or end_of_epoch,
                )
                self.metrics.write(
                    "train", step=progress.step, loss=round(loss, 6), lr=lr, batchSize=size
                )
                due = (
                    progress.step % settings.eval_every_steps == 0
                    if settings.eval_every_steps
                    else end_of_epoch or (index + 1) % self.eval_interval == 0
                )
                if due:
                    self._evaluate()
                if (
                    settings.checkpoint_every_steps
                    and progress.step % settings.checkpoint_every_steps == 0
                    and self.on_checkpoint is not None
                ):
                    self.on_checkpoint(self._checkpoint())
                if progress.stopped_early:
                    break
        if self._last_eval_step != progress.step and not progress.stopped_early:
            self._evaluate()
        if self.best_weights is not None:
            restore_weights(self.model, self.best_weights)
        self.model.eval()
        result = LoopResult(
            progress=progress,
            steps_per_epoch=self.steps_per_epoch,
            planned_steps=self.planned_steps,
            resumed_from_step=self.resumed_from_step,
            examples_per_second=run_examples / run_seconds if run_seconds else 0.0,
            best_validation=self.best_validation,
        )
        self.metrics.write("trained", **result.summary())
        log.info(
            "trained %d steps (best step %s, epoch %s, validation loss %s%s)",
            progress.step,
            progress.best_step,
            progress.best_epoch,
            progress.best_loss,
            ", stopped early" if progress.stopped_early else "",
        )
        return result

    def _train_step(self, indices: list[int]) -> tuple[float, float, int]:
        batch = collate(self.train_set, indices, self.pad_token_id).to(self.device)
        lr = self.settings.learning_rate * self.schedule.factor(self.progress.step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        with autocast_context(self.device):
            logits = self.model(
                input_ids=batch.input_ids, attention_mask=batch.attention_mask
            ).logits
        loss = F.cross_entropy(logits.float(), batch.labels)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.settings.max_grad_norm)
        self.optimizer.step()
        value = float(loss.detach())
        if not math.isfinite(value):
            raise TrainerError(
                f"training loss became {value} at step {self.progress.step + 1}; "
                "lower training.learningRate"
            )
        return value, lr, batch.size

    def _evaluate(self) -> None:
        settings, progress = self.settings, self.progress
        result = evaluate(
            self.model,
            self.validation_set,
            batch_size=settings.eval_batch_size,
            pad_token_id=self.pad_token_id,
            num_classes=self.num_classes,
            device=self.device,
        )
        self._last_eval_step = progress.step
        epoch = math.ceil(progress.step / self.steps_per_epoch)
        improved = (
            progress.best_loss is None or result.loss < progress.best_loss - settings.min_delta
        )
        if improved:
            progress.best_loss = result.loss
            progress.best_step = progress.step
            progress.best_epoch = epoch
            progress.evals_since_best = 0
            self.best_weights = snapshot_weights(self.model)
            self.best_validation = result
        else:
            progress.evals_since_best += 1
            if progress.evals_since_best >= settings.patience:
                progress.stopped_early = True
        record = {
            "step": progress.step,
            "epoch": epoch,
            "validationLoss": round(result.loss, 6),
            "accuracy": round(result.accuracy, 6),
            "f1": round(result.f1, 6),
            "improved": improved,
            # Training time up to this evaluation: the time to the best validation loss.
            "trainSeconds": round(progress.train_seconds, 3),
        }
        progress.evaluations.append(record)
        self.metrics.write("eval", **record, stoppedEarly=progress.stopped_early)
        log.info(
            "evaluated step %d (epoch %d): validation loss %.4f accuracy %.4f f1 %.4f%s%s",
            progress.step,
            epoch,
            result.loss,
            result.accuracy,
            result.f1,
            " (best so far)" if improved else "",
            "; stopping early" if progress.stopped_early else "",
        )
