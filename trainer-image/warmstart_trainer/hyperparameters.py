"""The settings of one training run, start-dependent defaults resolved, and their record.

The spec leaves the learning rate, early stopping and evaluation interval unset unless the
WarmStartJob names them; the defaults differ for warm and cold starts (warmstart.trainspec)
and the manifest records the values the run actually used, so a reader never needs to know
which trainer's defaults applied.
"""

from __future__ import annotations

from typing import Any

import torch

from warmstart.manifestschema import EarlyStoppingSettings, Hyperparameters
from warmstart.trainspec import TrainSpec
from warmstart_trainer.train_loop import LoopSettings


def loop_settings(
    spec: TrainSpec, learning_rate: float, *, progress_interval_s: float, checkpoints: bool
) -> LoopSettings:
    """The loop's settings for one run at ``learning_rate``; ``checkpoints`` False turns
    progress checkpoints off (a sweep's runs are not resumable one by one)."""
    training = spec.training
    patience, min_delta = spec.early_stopping
    return LoopSettings(
        max_epochs=training.max_epochs,
        batch_size=training.batch_size,
        learning_rate=learning_rate,
        weight_decay=training.weight_decay,
        warmup_ratio=training.warmup_ratio,
        max_grad_norm=training.max_grad_norm,
        patience=patience,
        min_delta=min_delta,
        seed=training.seed,
        eval_every_steps=training.eval_every_steps,
        evals_per_epoch=training.evals_per_epoch_for(cold_start=spec.cold_start),
        checkpoint_every_steps=training.checkpoint_every_steps if checkpoints else 0,
        progress_interval_s=progress_interval_s,
    )


def hyperparameters_json(
    spec: TrainSpec,
    settings: LoopSettings,
    *,
    rates: tuple[float, ...],
    max_length: int,
    device: torch.device,
) -> dict[str, Any]:
    """The manifest's ``hyperparameters``: ``settings`` are the chosen run's.

    Written through the manifest's own model (``warmstart.manifestschema``), so a misspelt
    or mistyped setting fails here rather than in a reader; only the fields set here are
    written (unset ones and None-valued ones alike keep the bytes of earlier manifests).
    """
    bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
    section = Hyperparameters(
        cold_start=spec.cold_start,
        max_epochs=settings.max_epochs,
        learning_rate=settings.learning_rate,
        **({"learning_rates": list(rates)} if len(rates) > 1 else {}),
        batch_size=settings.batch_size,
        max_seq_length=max_length,
        seed=settings.seed,
        warmup_ratio=settings.warmup_ratio,
        weight_decay=settings.weight_decay,
        max_grad_norm=settings.max_grad_norm,
        early_stopping=EarlyStoppingSettings(
            patience=settings.patience, min_delta=settings.min_delta
        ),
        eval_every_steps=settings.eval_every_steps,
        evals_per_epoch=None if settings.eval_every_steps else settings.evals_per_epoch,
        checkpoint_every_steps=settings.checkpoint_every_steps,
        validation_fraction=spec.dataset.validation_fraction,
        optimizer="AdamW",
        schedule="linear-warmup-decay",
        precision="bf16-autocast" if bf16 else "fp32",
    )
    return section.model_dump(mode="json", by_alias=True, exclude_unset=True)
