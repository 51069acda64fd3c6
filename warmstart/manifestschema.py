"""Typed sections of the manifest (format warmstart.dev/manifest/v1): the evaluation the
trainer reports, its training summary and its hyperparameters.

One set of models for both sides of the contract: `record.Manifest` validates these
sections against them when a manifest is built (the trainer writing) and when one is parsed
(the operator and the CLI reading), and readers use the typed views instead of string keys.
Every field is optional and unknown keys are kept (extra="allow"), so manifests written by
earlier trainers of the same format read unchanged and re-serialise to the same bytes.
A change of meaning needs a new MANIFEST_FORMAT and models of its own.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class _Section(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True, alias_generator=to_camel,
                              frozen=True)


class Score(_Section):
    """A model's scores on one evaluation set."""

    accuracy: float | None = None
    f1: float | None = None
    loss: float | None = None
    examples: int | None = None


class HoldoutEvaluation(_Section):
    uri: str | None = None
    from_validation: bool | None = None
    candidate: Score | None = None
    parent: Score | None = None


class ReplayEvaluation(_Section):
    uri: str = ""
    candidate: Score | None = None
    parent: Score | None = None


class CurvePoint(_Section):
    """One evaluation on the validation set during training."""

    step: int
    epoch: float | None = None
    validation_loss: float
    accuracy: float | None = None
    f1: float | None = None
    train_seconds: float | None = None  # training time up to this evaluation


class Curve(_Section):
    """The validation curve of one training run (one learning rate of a sweep)."""

    learning_rate: float | None = None
    chosen: bool | None = None  # the run whose weights the version holds
    steps: int | None = None
    best_step: int | None = None
    best_validation_loss: float | None = None
    stopped_early: bool | None = None
    train_seconds: float | None = None
    points: list[CurvePoint] = Field(default_factory=list)


class MajorityClass(_Section):
    """Whether the candidate predicts (nearly) one class for everything on the holdout set:
    a model that learned nothing but the class prior, which no comparison should take at
    face value."""

    flagged: bool
    label: str | None = None
    share: float | None = None  # fraction of holdout predictions that are `label`


class Evaluation(_Section):
    """`metrics`: candidate and parent on the lineage's holdout and on each replay set, the
    validation curves of every run the trainer made, and the majority-class check."""

    holdout: HoldoutEvaluation | None = None
    replay: list[ReplayEvaluation] = Field(default_factory=list)
    parent_evaluated: bool | None = None
    parent_not_evaluated_reason: str | None = None
    curves: list[Curve] = Field(default_factory=list)
    majority_class: MajorityClass | None = None


class TrainingReport(_Section):
    """`training`: what the run did (an imported base says where it came from instead)."""

    steps: int | None = None
    epochs: float | None = None
    steps_per_epoch: int | None = None
    best_step: int | None = None
    best_epoch: float | None = None
    best_validation_loss: float | None = None
    stopped_early: bool | None = None
    train_seconds: float | None = None
    examples_seen: int | None = None
    samples_per_second: float | None = None
    resumed_from_step: int | None = None
    cold_start: bool | None = None
    device: str | None = None
    learning_rate: float | None = None  # the chosen run's
    sweep_seconds: float | None = None  # training time of all the sweep's runs
    kind: str | None = None  # "imported" for a published base
    source: str | None = None
    model_type: str | None = None


class EarlyStoppingSettings(_Section):
    patience: int | None = None  # evaluations without improvement before stopping
    min_delta: float | None = None


class Hyperparameters(_Section):
    """`hyperparameters`: the settings the run trained with, start-dependent defaults
    resolved (a reader never needs to know the defaults of the trainer that wrote them)."""

    cold_start: bool | None = None
    max_epochs: int | None = None
    learning_rate: float | None = None  # the chosen one, when a sweep ran
    learning_rates: list[float] | None = None  # the sweep's candidates
    early_stopping: EarlyStoppingSettings | None = None
    evals_per_epoch: int | None = None
    batch_size: int | None = None
    max_seq_length: int | None = None
    seed: int | None = None
    warmup_ratio: float | None = None
    weight_decay: float | None = None
    max_grad_norm: float | None = None
    eval_every_steps: int | None = None
    checkpoint_every_steps: int | None = None
    validation_fraction: float | None = None
    optimizer: str | None = None
    schedule: str | None = None
    precision: str | None = None
