"""The training spec: what one trainer run does, as the operator writes it into a ConfigMap.

A JSON document with camelCase keys (the WarmStartJob's own spelling). Parsing turns it into
frozen dataclasses, each validated in ``__post_init__``; every error is a ``SpecError`` whose
message names the offending field by its JSON path (``training.learningRate: must be > 0``),
so a bad spec ends the trainer with one readable line rather than a stack trace.

Pure standard library: the operator imports this module to build specs, without torch.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from warmstart.record import KNOWN_TASKS, TASK_SEQUENCE_CLASSIFICATION, ensure_prefix, is_digest

SPEC_VERSION = "warmstart.dev/trainspec/v1"

# Early-stopping defaults differ by start (DESIGN.md). A warm start begins near a good
# solution: validation loss bottoms out within an epoch or two and then climbs as the model
# overfits the new window and drifts from what the parent knew, so it stops after 2 epochs
# without an improvement of at least 0.001. A cold start's curve is slow and has plateaus
# before it drops again; stopping it as early would compare a half-trained baseline, so it
# waits 5 epochs and counts any improvement.
WARM_PATIENCE, WARM_MIN_DELTA = 2, 1e-3
COLD_PATIENCE, COLD_MIN_DELTA = 5, 0.0

_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
_URI_RE = re.compile(r"^(s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]/.*|file:///.+)$")
_DATA_SUFFIXES = (".jsonl", ".json", ".csv", ".parquet")


class SpecError(ValueError):
    """An invalid training spec. ``field`` is the JSON path of the offending field."""

    def __init__(self, field_path: str, reason: str) -> None:
        super().__init__(f"{field_path}: {reason}" if field_path else reason)
        self.field = field_path
        self.reason = reason

    def under(self, prefix: str) -> SpecError:
        """The same error, with the field path seen from an enclosing object."""
        return SpecError(f"{prefix}.{self.field}" if self.field else prefix, self.reason)


def _check_uri(field_path: str, value: str, *, prefix: bool) -> None:
    if not _URI_RE.match(value):
        raise SpecError(field_path, f"{value!r} is not an s3://bucket/key or file:/// URI")
    if prefix is False and value.endswith("/"):
        raise SpecError(field_path, f"{value!r} names a prefix, not an object")


def _check_dataset_uri(field_path: str, value: str) -> None:
    _check_uri(field_path, value, prefix=False)
    if not value.lower().endswith(_DATA_SUFFIXES):
        raise SpecError(field_path, f"{value!r}: want a file ending in {', '.join(_DATA_SUFFIXES)}")


def _check_name(field_path: str, value: str) -> None:
    if len(value) > 63 or not _NAME_RE.match(value):
        raise SpecError(field_path, f"{value!r} is not a lowercase name (a-z, 0-9, '-', '.')")


def _check_positive(field_path: str, value: float) -> None:
    if not math.isfinite(value) or value <= 0:
        raise SpecError(field_path, f"must be > 0, got {value}")


@dataclass(frozen=True)
class LineageSpec:
    name: str
    labels: tuple[str, ...]
    task: str = TASK_SEQUENCE_CLASSIFICATION

    def __post_init__(self) -> None:
        _check_name("name", self.name)
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
        _check_uri("uri", self.uri, prefix=True)
        object.__setattr__(self, "uri", ensure_prefix(self.uri))
        if not is_digest(self.manifest_digest):
            raise SpecError("manifestDigest", "want 'sha256:' followed by 64 lowercase hex digits")
        _check_name("version", self.version)


@dataclass(frozen=True)
class DatasetSpec:
    train_uri: str
    validation_uri: str | None = None
    validation_fraction: float | None = None
    text_field: str = "text"
    label_field: str = "label"

    def __post_init__(self) -> None:
        _check_dataset_uri("trainURI", self.train_uri)
        if self.validation_uri is not None and self.validation_fraction is not None:
            raise SpecError(
                "validationFraction", "set validationURI or validationFraction, not both"
            )
        if self.validation_uri is not None:
            _check_dataset_uri("validationURI", self.validation_uri)
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
    learning_rate: float = 5e-5
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
        _check_positive("learningRate", self.learning_rate)
        if self.learning_rate > 1:
            raise SpecError("learningRate", f"must be <= 1, got {self.learning_rate}")
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
        _check_positive("maxGradNorm", self.max_grad_norm)
        if self.checkpoint_every_steps < 0:
            raise SpecError(
                "checkpointEverySteps", f"must be >= 0, got {self.checkpoint_every_steps}"
            )
        if self.eval_every_steps is not None and self.eval_every_steps < 1:
            raise SpecError("evalEverySteps", f"must be >= 1, got {self.eval_every_steps}")

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
            _check_dataset_uri("holdoutURI", self.holdout_uri)
        for index, uri in enumerate(self.replay_uris):
            _check_dataset_uri(f"replayURIs[{index}]", uri)
        if len(set(self.replay_uris)) != len(self.replay_uris):
            raise SpecError("replayURIs", "lists the same URI twice")


@dataclass(frozen=True)
class OutputSpec:
    """Where the new version goes: ``<storage.uri>/<version>/``."""

    uri: str

    def __post_init__(self) -> None:
        _check_uri("uri", self.uri, prefix=True)
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
        _check_name("version", self.version)
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


# --- parsing -------------------------------------------------------------------------------

_T = TypeVar("_T")


class _Fields:
    """Typed, path-aware access to one JSON object; unknown keys are errors (typos fail)."""

    def __init__(self, raw: object, path: str) -> None:
        if not isinstance(raw, dict):
            raise SpecError(path, "expected a JSON object")
        self._raw: dict[str, Any] = raw
        self._path = path
        self._used: set[str] = set()

    def _at(self, key: str) -> str:
        return f"{self._path}.{key}" if self._path else key

    def _take(self, key: str, required: bool) -> Any:
        self._used.add(key)
        if key not in self._raw or self._raw[key] is None:
            if required:
                raise SpecError(self._at(key), "is required")
            return None
        return self._raw[key]

    def string(self, key: str, *, required: bool = False) -> str | None:
        value = self._take(key, required)
        if value is not None and (not isinstance(value, str) or not value):
            raise SpecError(self._at(key), "must be a non-empty string")
        return value

    def required_string(self, key: str) -> str:
        value = self.string(key, required=True)
        assert value is not None
        return value

    def integer(self, key: str) -> int | None:
        value = self._take(key, False)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise SpecError(self._at(key), f"must be an integer, got {value!r}")
        return value

    def number(self, key: str) -> float | None:
        value = self._take(key, False)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise SpecError(self._at(key), f"must be a number, got {value!r}")
        return float(value) if value is not None else None

    def boolean(self, key: str) -> bool | None:
        value = self._take(key, False)
        if value is not None and not isinstance(value, bool):
            raise SpecError(self._at(key), f"must be true or false, got {value!r}")
        return value

    def strings(self, key: str) -> tuple[str, ...] | None:
        value = self._take(key, False)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise SpecError(self._at(key), "must be a list of strings")
        return tuple(value)

    def child(self, key: str, *, required: bool = False) -> _Fields | None:
        value = self._take(key, required)
        return None if value is None else _Fields(value, self._at(key))

    def build(self, cls: Callable[..., _T], **values: Any) -> _T:
        """Construct ``cls`` from the non-None ``values``; check for unknown keys first."""
        unknown = sorted(set(self._raw) - self._used)
        if unknown:
            raise SpecError(self._at(unknown[0]), "unknown field")
        try:
            return cls(**{key: value for key, value in values.items() if value is not None})
        except SpecError as exc:
            raise exc.under(self._path) if self._path else exc from None


def parse_spec(raw: object) -> TrainSpec:
    """Validate a decoded JSON document into a ``TrainSpec``; ``SpecError`` names the field."""
    top = _Fields(raw, "")
    spec_version = top.string("specVersion")
    if spec_version is not None and spec_version != SPEC_VERSION:
        raise SpecError("specVersion", f"unsupported {spec_version!r}, want {SPEC_VERSION!r}")

    lineage_fields = top.child("lineage", required=True)
    assert lineage_fields is not None
    lineage = lineage_fields.build(
        LineageSpec,
        name=lineage_fields.required_string("name"),
        task=lineage_fields.string("task"),
        labels=_required(lineage_fields.strings("labels"), "lineage.labels"),
    )

    parent_fields = top.child("parent", required=True)
    assert parent_fields is not None
    parent = parent_fields.build(
        ParentSpec,
        uri=parent_fields.required_string("uri"),
        manifest_digest=parent_fields.required_string("manifestDigest"),
        version=parent_fields.string("version"),
    )

    dataset_fields = top.child("dataset", required=True)
    assert dataset_fields is not None
    dataset = dataset_fields.build(
        DatasetSpec,
        train_uri=dataset_fields.required_string("trainURI"),
        validation_uri=dataset_fields.string("validationURI"),
        validation_fraction=dataset_fields.number("validationFraction"),
        text_field=dataset_fields.string("textField"),
        label_field=dataset_fields.string("labelField"),
    )

    training = TrainingSpec()
    training_fields = top.child("training")
    if training_fields is not None:
        early_stopping = EarlyStoppingSpec()
        stopping_fields = training_fields.child("earlyStopping")
        if stopping_fields is not None:
            early_stopping = stopping_fields.build(
                EarlyStoppingSpec,
                patience=stopping_fields.integer("patience"),
                min_delta=stopping_fields.number("minDelta"),
            )
        training = training_fields.build(
            TrainingSpec,
            max_epochs=training_fields.integer("maxEpochs"),
            learning_rate=training_fields.number("learningRate"),
            batch_size=training_fields.integer("batchSize"),
            max_seq_length=training_fields.integer("maxSeqLength"),
            seed=training_fields.integer("seed"),
            warmup_ratio=training_fields.number("warmupRatio"),
            weight_decay=training_fields.number("weightDecay"),
            max_grad_norm=training_fields.number("maxGradNorm"),
            early_stopping=early_stopping,
            checkpoint_every_steps=training_fields.integer("checkpointEverySteps"),
            eval_every_steps=training_fields.integer("evalEverySteps"),
        )

    evaluation = EvaluationSpec()
    evaluation_fields = top.child("evaluation")
    if evaluation_fields is not None:
        evaluation = evaluation_fields.build(
            EvaluationSpec,
            holdout_uri=evaluation_fields.string("holdoutURI"),
            replay_uris=evaluation_fields.strings("replayURIs"),
        )

    output_fields = top.child("output", required=True)
    assert output_fields is not None
    output = output_fields.build(OutputSpec, uri=output_fields.required_string("uri"))

    return top.build(
        TrainSpec,
        lineage=lineage,
        version=top.required_string("version"),
        parent=parent,
        dataset=dataset,
        output=output,
        cold_start=top.boolean("coldStart"),
        training=training,
        evaluation=evaluation,
    )


def _required(value: _T | None, field_path: str) -> _T:
    if value is None:
        raise SpecError(field_path, "is required")
    return value


def parse_spec_text(text: str) -> TrainSpec:
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SpecError("", f"not valid JSON: {exc.msg} at line {exc.lineno}") from None
    return parse_spec(raw)

