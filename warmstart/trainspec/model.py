"""The training spec's frozen dataclasses, validated in ``__post_init__``."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from warmstart.record import KNOWN_TASKS, TASK_SEQUENCE_CLASSIFICATION, ensure_prefix, is_digest
from warmstart.trainspec.fields import (
    SpecError,
    check_dataset_uri,
    check_name,
    check_positive,
    check_rate,
    check_uri,
)

SPEC_VERSION = "warmstart.dev/trainspec/v1"

# Defaults differ by start (DESIGN.md); the manifest records the values a run resolved.
# A warm start begins near a good solution: validation loss bottoms out within an epoch or two
# and then climbs as the model overfits the new window and drifts from what the parent knew,
# so it is evaluated once per epoch and stops after 2 evaluations without an improvement of
# at least 0.001, at the usual fine-tuning rate. A cold start's curve is slow and has plateaus
# before it drops again; stopping it as early would compare a half-trained baseline, so it is
# evaluated twice per epoch (its best point is found more precisely), waits 6 evaluations
# (3 epochs) and counts any improvement. Its rate is 1e-4: the 3e-4 usual for training a
# transformer from scratch on a large corpus collapses this architecture to the majority
# class on a few thousand examples.
WARM_PATIENCE, WARM_MIN_DELTA, WARM_EVALS_PER_EPOCH = 2, 1e-3, 1
COLD_PATIENCE, COLD_MIN_DELTA, COLD_EVALS_PER_EPOCH = 6, 0.0, 2
WARM_LEARNING_RATE, COLD_LEARNING_RATE = 5e-5, 1e-4
MAX_SWEEP = 8

@dataclass(frozen=True)
class LineageSpec:
    name: str
    labels: tuple[str, ...]
    task: str = TASK_SEQUENCE_CLASSIFICATION

    def __post_init__(self) -> None:
        check_name("name", self.name)
        if self.task not in KNOWN_TASKS:
            raise SpecError("task", f"unsupported {self.task!r}; known: {sorted(KNOWN_TASKS)}")
        if len(self.labels) < 2:
            raise SpecError("labels", "needs at least two class names")
        if len(set(self.labels)) != len(self.labels):
            raise SpecError("labels", "class names must be unique")
        if any(not label.strip() for label in self.labels):
            raise SpecError("labels", "class names must be non-empty")


@dataclass(frozen=True)
class ParentSpec:
    """The version to start from; its manifest must hash to ``manifest_digest``."""

    uri: str
    manifest_digest: str
    version: str = "base"

    def __post_init__(self) -> None:
        check_uri("uri", self.uri, prefix=True)
        object.__setattr__(self, "uri", ensure_prefix(self.uri))
        if not is_digest(self.manifest_digest):
            raise SpecError("manifestDigest", "want 'sha256:' followed by 64 lowercase hex digits")
        check_name("version", self.version)


@dataclass(frozen=True)
class DatasetSpec:
    train_uri: str
    validation_uri: str | None = None
    validation_fraction: float | None = None
    text_field: str = "text"
    label_field: str = "label"

    def __post_init__(self) -> None:
        check_dataset_uri("trainURI", self.train_uri)
        if self.validation_uri is not None and self.validation_fraction is not None:
            raise SpecError(
                "validationFraction", "set validationURI or validationFraction, not both"
            )
        if self.validation_uri is not None:
            check_dataset_uri("validationURI", self.validation_uri)
        elif self.validation_fraction is None:
            object.__setattr__(self, "validation_fraction", 0.1)
        if self.validation_fraction is not None and not 0 < self.validation_fraction < 1:
            raise SpecError(
                "validationFraction", f"must be in (0, 1), got {self.validation_fraction}"
            )
        if not self.text_field:
            raise SpecError("textField", "must be non-empty")
        if not self.label_field:
            raise SpecError("labelField", "must be non-empty")
        if self.text_field == self.label_field:
            raise SpecError("labelField", "must differ from textField")


@dataclass(frozen=True)
class EarlyStoppingSpec:
    """``None`` fields take the warm- or cold-start default (see ``early_stopping_for``)."""

    patience: int | None = None
    min_delta: float | None = None

    def __post_init__(self) -> None:
        if self.patience is not None and self.patience < 1:
            raise SpecError("patience", f"must be >= 1, got {self.patience}")
        if self.min_delta is not None and (not math.isfinite(self.min_delta) or self.min_delta < 0):
            raise SpecError("minDelta", f"must be >= 0, got {self.min_delta}")


@dataclass(frozen=True)
class TrainingSpec:
    max_epochs: int = 10
    # None: the start-dependent default (see ``learning_rate_for``).
    learning_rate: float | None = None
    # A sweep: one run per rate with the same step budget, the best by validation loss kept.
    learning_rates: tuple[float, ...] = ()
    batch_size: int = 32
    max_seq_length: int = 128
    seed: int = 42
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    early_stopping: EarlyStoppingSpec = field(default_factory=EarlyStoppingSpec)
    # 0 turns progress checkpoints off; a preempted run then starts over.
    checkpoint_every_steps: int = 200
    # None: evaluate on the validation set once per epoch (early stopping counts epochs).
    eval_every_steps: int | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.max_epochs <= 1000:
            raise SpecError("maxEpochs", f"must be in [1, 1000], got {self.max_epochs}")
        if self.learning_rate is not None:
            check_rate("learningRate", self.learning_rate)
        if len(self.learning_rates) > MAX_SWEEP:
            raise SpecError("learningRates", f"at most {MAX_SWEEP} rates")
        for index, rate in enumerate(self.learning_rates):
            check_rate(f"learningRates[{index}]", rate)
        if len(set(self.learning_rates)) != len(self.learning_rates):
            raise SpecError("learningRates", "lists the same rate twice")
        if self.learning_rates and self.learning_rate is not None:
            raise SpecError("learningRates", "set learningRate or learningRates, not both")
        if not 1 <= self.batch_size <= 4096:
            raise SpecError("batchSize", f"must be in [1, 4096], got {self.batch_size}")
        if not 8 <= self.max_seq_length <= 8192:
            raise SpecError("maxSeqLength", f"must be in [8, 8192], got {self.max_seq_length}")
        if not 0 <= self.seed < 2**32:
            raise SpecError("seed", f"must be in [0, 2^32), got {self.seed}")
        if not 0 <= self.warmup_ratio < 1:
            raise SpecError("warmupRatio", f"must be in [0, 1), got {self.warmup_ratio}")
        if not math.isfinite(self.weight_decay) or self.weight_decay < 0:
            raise SpecError("weightDecay", f"must be >= 0, got {self.weight_decay}")
        check_positive("maxGradNorm", self.max_grad_norm)
        if self.checkpoint_every_steps < 0:
            raise SpecError(
                "checkpointEverySteps", f"must be >= 0, got {self.checkpoint_every_steps}"
            )
        if self.eval_every_steps is not None and self.eval_every_steps < 1:
            raise SpecError("evalEverySteps", f"must be >= 1, got {self.eval_every_steps}")

    def learning_rates_for(self, *, cold_start: bool) -> tuple[float, ...]:
        """The rates to train with: the sweep's, or the one rate (default by start)."""
        if self.learning_rates:
            return self.learning_rates
        if self.learning_rate is not None:
            return (self.learning_rate,)
        return (COLD_LEARNING_RATE if cold_start else WARM_LEARNING_RATE,)

    def evals_per_epoch_for(self, *, cold_start: bool) -> int:
        """Evaluations per epoch when evalEverySteps is unset."""
        return COLD_EVALS_PER_EPOCH if cold_start else WARM_EVALS_PER_EPOCH

    def early_stopping_for(self, *, cold_start: bool) -> tuple[int, float]:
        """(patience, minDelta) with the start-dependent defaults filled in."""
        default_patience, default_delta = (
            (COLD_PATIENCE, COLD_MIN_DELTA) if cold_start else (WARM_PATIENCE, WARM_MIN_DELTA)
        )
        stopping = self.early_stopping
        return (
            stopping.patience if stopping.patience is not None else default_patience,
            stopping.min_delta if stopping.min_delta is not None else default_delta,
        )


@dataclass(frozen=True)
class EvaluationSpec:
    """Fixed holdout set (None: the validation set stands in) and earlier windows' sets."""

    holdout_uri: str | None = None
    replay_uris: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.holdout_uri is not None:
            check_dataset_uri("holdoutURI", self.holdout_uri)
        for index, uri in enumerate(self.replay_uris):
            check_dataset_uri(f"replayURIs[{index}]", uri)
        if len(set(self.replay_uris)) != len(self.replay_uris):
            raise SpecError("replayURIs", "lists the same URI twice")


@dataclass(frozen=True)
class OutputSpec:
    """Where the new version goes: ``<storage.uri>/<version>/``."""

    uri: str

    def __post_init__(self) -> None:
        check_uri("uri", self.uri, prefix=True)
        object.__setattr__(self, "uri", ensure_prefix(self.uri))


@dataclass(frozen=True)
class TrainSpec:
    lineage: LineageSpec
    version: str
    parent: ParentSpec
    dataset: DatasetSpec
    output: OutputSpec
    cold_start: bool = False
    training: TrainingSpec = field(default_factory=TrainingSpec)
    evaluation: EvaluationSpec = field(default_factory=EvaluationSpec)

    def __post_init__(self) -> None:
        check_name("version", self.version)
        if self.output.uri == self.parent.uri:
            raise SpecError("output.uri", "must differ from parent.uri")

    @property
    def early_stopping(self) -> tuple[int, float]:
        return self.training.early_stopping_for(cold_start=self.cold_start)

    def to_json(self) -> dict[str, Any]:
        """The camelCase document ``parse_spec`` reads back (the operator writes this)."""
        training = self.training
        dataset = self.dataset
        doc: dict[str, Any] = {
            "specVersion": SPEC_VERSION,
            "lineage": {
                "name": self.lineage.name,
                "task": self.lineage.task,
                "labels": list(self.lineage.labels),
            },
            "version": self.version,
            "parent": {
                "uri": self.parent.uri,
                "manifestDigest": self.parent.manifest_digest,
                "version": self.parent.version,
            },
            "coldStart": self.cold_start,
            "dataset": _without_none(
                {
                    "trainURI": dataset.train_uri,
                    "validationURI": dataset.validation_uri,
                    "validationFraction": dataset.validation_fraction,
                    "textField": dataset.text_field,
                    "labelField": dataset.label_field,
                }
            ),
            "training": _without_none(
                {
                    "maxEpochs": training.max_epochs,
                    "learningRate": training.learning_rate,
                    "learningRates": list(training.learning_rates) or None,
                    "batchSize": training.batch_size,
                    "maxSeqLength": training.max_seq_length,
                    "seed": training.seed,
                    "warmupRatio": training.warmup_ratio,
                    "weightDecay": training.weight_decay,
                    "maxGradNorm": training.max_grad_norm,
                    "earlyStopping": _without_none(
                        {
                            "patience": training.early_stopping.patience,
                            "minDelta": training.early_stopping.min_delta,
                        }
                    ),
                    "checkpointEverySteps": training.checkpoint_every_steps,
                    "evalEverySteps": training.eval_every_steps,
                }
            ),
            "evaluation": _without_none(
                {
                    "holdoutURI": self.evaluation.holdout_uri,
                    "replayURIs": list(self.evaluation.replay_uris),
                }
            ),
            "output": {"uri": self.output.uri},
        }
        return doc

    def to_json_text(self) -> str:
        return json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n"


def _without_none(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}
