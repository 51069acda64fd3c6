"""Parsing a training spec document into the models of ``warmstart.trainspec.model``."""

from __future__ import annotations

import json

from pydantic import ValidationError

from warmstart.trainspec.fields import WIRE, SpecError, spec_error
from warmstart.trainspec.model import TrainSpec


def parse_spec(raw: object) -> TrainSpec:
    """Validate a decoded JSON document into a ``TrainSpec``; ``SpecError`` names the field."""
    if not isinstance(raw, dict):
        raise SpecError("", "expected a JSON object")
    try:
        return TrainSpec.model_validate(raw, context=WIRE)
    except ValidationError as exc:
        raise spec_error(exc) from None


def parse_spec_text(text: str) -> TrainSpec:
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SpecError("", f"not valid JSON: {exc.msg} at line {exc.lineno}") from None
    except (ValueError, RecursionError) as exc:
        # An integer past Python's digit limit, or nesting deeper than the recursion limit.
        raise SpecError("", f"not valid JSON: {exc}") from None
    return parse_spec(raw)
