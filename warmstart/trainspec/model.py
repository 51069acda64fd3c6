"""The training spec's pydantic models: frozen, camelCase on the wire, every field checked."""

from __future__ import annotations

import json
import math
from typing import Annotated, Any

from pydantic import AfterValidator, Field, model_validator

from warmstart.record import KNOWN_TASKS, TASK_SEQUENCE_CLASSIFICATION, ensure_prefix, is_digest
from warmstart.trainspec.fields import (
    DataURI,
    DataURIs,
    Flag,
    Integer,
    Name,
    Number,
    Prefix,
    Rate,
    Rates,
    SpecError,
    SpecModel,
    Strings,
    Text,
    check_positive,
    checked,
    rule,
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


def _unique(what: str) -> AfterValidator:
    return AfterValidator(lambda values: _check_unique(values, what))


def _check_unique(values: tuple[Any, ...], what: str) -> tuple[Any, ...]:
    if len(set(values)) != len(values):
        raise SpecError("", f"lists the same {what} twice")
    return values


def _check_task(field_path: str, task: str) -> None:
    if task not in KNOWN_TASKS:
        raise SpecError(field_path, f"unsupported {task!r}; known: {sorted(KNOWN_TASKS)}")


def _check_labels(field_path: str, labels: tuple[str, ...]) -> None:
    if len(labels) < 2:
        raise SpecError(field_path, "needs at least two class names")
    if len(set(labels)) != len(labels):
        raise SpecError(field_path, "class names must be unique")
    if any(not label.strip() for label in labels):
        raise SpecError(field_path, "class names must be non-empty")


def _check_digest(field_path: str, digest: str) -> None:
    if not is_digest(digest):
        raise SpecError(field_path, "want 'sha256:' followed by 64 lowercase hex digits")


def _check_sweep(field_path: str, rates: tuple[float, ...]) -> None:
    if len(rates) > MAX_SWEEP:
        raise SpecError(field_path, f"at most {MAX_SWEEP} rates")
    _check_unique(rates, "rate")


def _check_spec_version(field_path: str, version: str) -> None:
    if version != SPEC_VERSION:
        raise SpecError(field_path, f"unsupported {version!r}, want {SPEC_VERSION!r}")


# Version and storage URIs are kept with exactly one trailing slash.
PrefixURI = Annotated[Prefix, AfterValidator(ensure_prefix)]


class LineageSpec(SpecModel):
    name: Name
    labels: Annotated[Strings, checked(_check_labels)]
    task: Annotated[Text, checked(_check_task)] = TASK_SEQUENCE_CLASSIFICATION


class ParentSpec(SpecModel):
    """The version to start from; its manifest must hash to ``manifest_digest``."""

    uri: PrefixURI
    manifest_digest: Annotated[Text, checked(_check_digest)]
    version: Name = "base"


class DatasetSpec(SpecModel):
    """``validation_fraction`` is 0.1 when neither it nor ``validation_uri`` is set."""

    train_uri: DataURI
    validation_uri: DataURI | None = None
    validation_fraction: Annotated[
        Number, rule(lambda v: 0 < v < 1, "must be in (0, 1)")
    ] | None = None
    text_field: Text = "text"
    label_field: Text = "label"

    @model_validator(mode="after")
    def _validation_set(self) -> DatasetSpec:
        if self.validation_uri is not None and self.validation_fraction is not None:
            raise SpecError(
                "validationFraction", "set validationURI or validationFraction, not both"
            )
        if self.validation_uri is None and self.validation_fraction is None:
            # Frozen: the default is filled in once, while the object is being validated.
            object.__setattr__(self, "validation_fraction", 0.1)
        if self.text_field == self.label_field:
            raise SpecError("labelField", "must differ from textField")
        return self


class EarlyStoppingSpec(SpecModel):
    """``None`` fields take the warm- or cold-start default (see ``early_stopping_for``)."""

    patience: Annotated[Integer, rule(lambda v: v >= 1, "must be >= 1")] | None = None
    min_delta: Annotated[
        Number, rule(lambda v: math.isfinite(v) and v >= 0, "must be >= 0")
    ] | None = None


class TrainingSpec(SpecModel):
    max_epochs: Annotated[Integer, rule(lambda v: 1 <= v <= 1000, "must be in [1, 1000]")] = 10
    # None: the start-dependent default (see ``learning_rate_for``).
    learning_rate: Rate | None = None
    # A sweep: one run per rate with the same step budget, the best by validation loss kept.
    learning_rates: Annotated[Rates, checked(_check_sweep)] = ()
    batch_size: Annotated[Integer, rule(lambda v: 1 <= v <= 4096, "must be in [1, 4096]")] = 32
    max_seq_length: Annotated[
        Integer, rule(lambda v: 8 <= v <= 8192, "must be in [8, 8192]")
    ] = 128
    seed: Annotated[Integer, rule(lambda v: 0 <= v < 2**32, "must be in [0, 2^32)")] = 42
    warmup_ratio: Annotated[Number, rule(lambda v: 0 <= v < 1, "must be in [0, 1)")] = 0.1
    weight_decay: Annotated[
        Number, rule(lambda v: math.isfinite(v) and v >= 0, "must be >= 0")
    ] = 0.01
    max_grad_norm: Annotated[Number, checked(check_positive)] = 1.0
    early_stopping: EarlyStoppingSpec = Field(default_factory=EarlyStoppingSpec)
    # 0 turns progress checkpoints off; a preempted run then starts over.
    checkpoint_every_steps: Annotated[Integer, rule(lambda v: v >= 0, "must be >= 0")] = 200
    # None: evaluate on the validation set once per epoch (early stopping counts epochs).
    eval_every_steps: Annotated[Integer, rule(lambda v: v >= 1, "must be >= 1")] | None = None

    @model_validator(mode="after")
    def _one_kind_of_rate(self) -> TrainingSpec:
        if self.learning_rates and self.learning_rate is not None:
            raise SpecError("learningRates", "set learningRate or learningRates, not both")
        return self

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


class EvaluationSpec(SpecModel):
    """Fixed holdout set (None: the validation set stands in) and earlier windows' sets."""

    holdout_uri: DataURI | None = None
    replay_uris: Annotated[DataURIs, _unique("URI")] = ()


class OutputSpec(SpecModel):
    """Where the new version goes: ``<storage.uri>/<version>/``."""

    uri: PrefixURI


class TrainSpec(SpecModel):
    """One trainer run; ``spec_version`` versions the document (absent: the current one)."""

    spec_version: Annotated[Text, checked(_check_spec_version)] = SPEC_VERSION
    lineage: LineageSpec
    version: Name
    parent: ParentSpec
    dataset: DatasetSpec
    output: OutputSpec
    cold_start: Flag = False
    training: TrainingSpec = Field(default_factory=TrainingSpec)
    evaluation: EvaluationSpec = Field(default_factory=EvaluationSpec)

    @model_validator(mode="after")
    def _output_is_new(self) -> TrainSpec:
        if self.output.uri == self.parent.uri:
            raise SpecError("output.uri", "must differ from parent.uri")
        return self

    @property
    def early_stopping(self) -> tuple[int, float]:
        return self.training.early_stopping_for(cold_start=self.cold_start)

    def to_json(self) -> dict[str, Any]:
        """The camelCase document ``parse_spec`` reads back (the operator writes this).

        The same bytes as the dataclass spec wrote before it (no learningRates without a
        sweep), so a resumed run's spec fingerprint does not change across the upgrade.
        """
        doc = self.model_dump(mode="json", by_alias=True, exclude_none=True)
        if not self.training.learning_rates:
            del doc["training"]["learningRates"]
        return doc

    def to_json_text(self) -> str:
        return json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n"
