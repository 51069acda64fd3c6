"""The WarmStartJob's training hyperparameters: rates (or a sweep), early stopping, budget."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from warmstart.api.base import ApiModel
from warmstart.api.markers import Cel, ListType

# Early-stopping defaults (the trainer's, warmstart.trainspec, restated for the reference):
# a warm start is already near a good optimum and overfits the new window quickly, so it is
# evaluated once per epoch and stops after 2 evaluations without improvement; a cold start
# needs room to get past its noisy first epochs, so it is evaluated twice per epoch and
# waits 6 evaluations (3 epochs), counting any improvement.
WARM_START_PATIENCE = 2
COLD_START_PATIENCE = 6
DEFAULT_MIN_DELTA = 0.001
COLD_START_MIN_DELTA = 0.0


class EarlyStopping(ApiModel):
    """Stop when validation loss stops improving, and keep the best evaluation's weights.
    Unset fields default by start kind: a warm start is evaluated once per epoch with
    patience 2 and minDelta 0.001; a cold start twice per epoch with patience 6 and
    minDelta 0. The manifest records the values used."""

    patience: Annotated[int, Field(ge=1, le=100)] | None = None
    """Evaluations without an improvement of at least minDelta before training stops."""

    min_delta: Annotated[float, Field(ge=0, le=10)] | None = None
    """Smallest drop in validation loss that counts as an improvement."""

    def resolved(self, *, cold_start: bool) -> tuple[int, float]:
        """(patience, minDelta) with the start-kind defaults filled in."""
        default_patience = COLD_START_PATIENCE if cold_start else WARM_START_PATIENCE
        return (
            self.patience if self.patience is not None else default_patience,
            self.min_delta if self.min_delta is not None
            else COLD_START_MIN_DELTA if cold_start else DEFAULT_MIN_DELTA,
        )


class Training(ApiModel):
    """Hyperparameters of the run; recorded in the child's manifest."""

    crd_rules = (
        Cel(
            "!has(self.learningRate) || !has(self.learningRates)",
            "set learningRate or learningRates (a sweep), not both",
            field_path=".learningRates",
        ),
    )

    max_epochs: Annotated[int, Field(ge=1, le=1000)] = 5
    """Upper bound on passes over the training data; early stopping usually ends sooner."""

    learning_rate: Annotated[float, Field(gt=0, le=1)] | None = None
    """Peak learning rate of the AdamW optimizer, in (0, 1]; unset: 5e-5 for a warm start,
    1e-4 for a cold start."""

    learning_rates: (
        Annotated[
            list[Annotated[float, Field(gt=0, le=1)]],
            Field(min_length=1, max_length=8),
            ListType("set"),
        ]
        | None
    ) = None
    """A sweep instead of learningRate: one run per rate with the same step budget; the
    version keeps the run with the lowest validation loss (never the holdout set), and its
    manifest records every run's curve. Give warm and cold starts the same list to compare
    them fairly."""

    batch_size: Annotated[int, Field(ge=1, le=4096)] = 16
    """Examples per optimizer step."""

    max_seq_length: Annotated[int, Field(ge=8, le=8192)] = 128
    """Tokens per example; longer inputs are truncated."""

    seed: Annotated[int, Field(ge=0, le=4294967295)] = 42
    """Seed for initialisation, shuffling and validationFraction, so a run can be repeated."""

    early_stopping: EarlyStopping | None = None
    """Stop on validation loss; see the field for warm and cold defaults."""

    checkpoint_every_steps: Annotated[int, Field(ge=1, le=1000000)] = 500
    """Write a resumable checkpoint to object storage every this many optimizer steps (and
    at each epoch end); a restarted pod resumes from the newest complete one."""

    warmup_ratio: Annotated[float, Field(ge=0, lt=1)] = 0.0
    """Fraction of the steps over which the learning rate ramps up from zero, in [0, 1)."""

    grad_clip_norm: Annotated[float, Field(gt=0, le=1000)] = 1.0
    """Gradients are rescaled to at most this global L2 norm."""

    @model_validator(mode="after")
    def _one_rate_or_a_sweep(self) -> Training:
        # The CEL rule above, for objects validated outside the API server.
        if self.learning_rate is not None and self.learning_rates is not None:
            raise ValueError("set learningRate or learningRates (a sweep), not both")
        return self
