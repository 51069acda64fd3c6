"""Parsing a training spec document into the dataclasses of ``warmstart.trainspec.model``."""

from __future__ import annotations

import json
from typing import TypeVar

from warmstart.trainspec.fields import Fields, SpecError
from warmstart.trainspec.model import (
    SPEC_VERSION,
    DatasetSpec,
    EarlyStoppingSpec,
    EvaluationSpec,
    LineageSpec,
    OutputSpec,
    ParentSpec,
    TrainingSpec,
    TrainSpec,
)

_T = TypeVar("_T")

def parse_spec(raw: object) -> TrainSpec:
    """Validate a decoded JSON document into a ``TrainSpec``; ``SpecError`` names the field."""
    top = Fields(raw, "")
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
            learning_rates=training_fields.numbers("learningRates"),
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
