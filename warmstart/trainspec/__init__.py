"""The training spec: what one trainer run does, as the operator writes it into a ConfigMap.

A JSON document with camelCase keys (the WarmStartJob's own spelling). Parsing turns it into
frozen dataclasses, each validated in ``__post_init__``; every error is a ``SpecError`` whose
message names the offending field by its JSON path (``training.learningRate: must be > 0``),
so a bad spec ends the trainer with one readable line rather than a stack trace.

Pure standard library: the operator imports this module to build specs, without torch.

The package: ``model`` (the dataclasses and their checks), ``parse`` (reading a document),
``fields`` (the error type and field checks). Import everything from ``warmstart.trainspec``.
"""

from __future__ import annotations

from warmstart.trainspec.fields import SpecError
from warmstart.trainspec.model import (
    COLD_EVALS_PER_EPOCH,
    COLD_LEARNING_RATE,
    COLD_MIN_DELTA,
    COLD_PATIENCE,
    MAX_SWEEP,
    SPEC_VERSION,
    WARM_EVALS_PER_EPOCH,
    WARM_LEARNING_RATE,
    WARM_MIN_DELTA,
    WARM_PATIENCE,
    DatasetSpec,
    EarlyStoppingSpec,
    EvaluationSpec,
    LineageSpec,
    OutputSpec,
    ParentSpec,
    TrainingSpec,
    TrainSpec,
)
from warmstart.trainspec.parse import parse_spec, parse_spec_text

__all__ = [
    "COLD_EVALS_PER_EPOCH",
    "COLD_LEARNING_RATE",
    "COLD_MIN_DELTA",
    "COLD_PATIENCE",
    "MAX_SWEEP",
    "SPEC_VERSION",
    "WARM_EVALS_PER_EPOCH",
    "WARM_LEARNING_RATE",
    "WARM_MIN_DELTA",
    "WARM_PATIENCE",
    "DatasetSpec",
    "EarlyStoppingSpec",
    "EvaluationSpec",
    "LineageSpec",
    "OutputSpec",
    "ParentSpec",
    "SpecError",
    "TrainSpec",
    "TrainingSpec",
    "parse_spec",
    "parse_spec_text",
]
