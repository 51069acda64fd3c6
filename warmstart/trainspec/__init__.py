"""The training spec: what one trainer run does, as the operator writes it into a ConfigMap.

A JSON document with camelCase keys (the WarmStartJob's own spelling), versioned by
``specVersion`` (``SPEC_VERSION``). It is read into frozen pydantic models in the style of
the API's (``warmstart.api.base``), but strict: unknown keys are errors, numbers are not
strings, ``null`` means "not set". Every error is one ``SpecError`` whose message names the
offending field by its JSON path (``training.learningRates[1]: must be > 0``), so a bad spec
ends the trainer with one readable line rather than a stack trace. Models built in Python
(the operator) raise the same ``SpecError``.

No torch: the operator imports this package to build specs.

The package: ``model`` (the models and their checks), ``parse`` (reading a document),
``fields`` (the error type, the base model, field types and error translation). Import
everything from ``warmstart.trainspec``.
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
