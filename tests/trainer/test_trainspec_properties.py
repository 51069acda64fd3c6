"""Property tests of the spec parser: whatever the document, the trainer either gets a spec or
one ``SpecError`` naming a field, never another exception (which would end it with a stack
trace instead of exit code 2 and one line)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from warmstart.record import TASK_SEQUENCE_CLASSIFICATION
from warmstart.trainspec import SpecError, TrainSpec, parse_spec, parse_spec_text
from warmstart.trainspec.fields import spec_error

DIGEST = "sha256:" + "ab" * 32
TOP_FIELDS = {field.alias or name for name, field in TrainSpec.model_fields.items()}
PROPERTY_SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def valid() -> dict[str, Any]:
    return {
        "specVersion": "warmstart.dev/trainspec/v1",
        "lineage": {"name": "reviews", "labels": ["negative", "positive"],
                    "task": TASK_SEQUENCE_CLASSIFICATION},
        "version": "v3",
        "parent": {"uri": "s3://models/reviews/v2", "manifestDigest": DIGEST, "version": "v2"},
        "coldStart": False,
        "dataset": {"trainURI": "s3://data/reviews/2024-05.jsonl", "validationFraction": 0.2,
                    "textField": "text", "labelField": "label"},
        "training": {"maxEpochs": 4, "learningRates": [3e-5, 1e-4], "batchSize": 16,
                     "maxSeqLength": 64, "seed": 7, "warmupRatio": 0.1, "weightDecay": 0.01,
                     "maxGradNorm": 1.0, "earlyStopping": {"patience": 3, "minDelta": 0.0},
                     "checkpointEverySteps": 50, "evalEverySteps": 10},
        "evaluation": {"holdoutURI": "s3://data/reviews/holdout.csv",
                       "replayURIs": ["s3://data/reviews/2024-04-eval.jsonl"]},
        "output": {"uri": "s3://models/reviews/v3/"},
    }


_scalars = (
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
    | st.sampled_from(["s3://data/x.jsonl", "file:///d/y.csv", "v4", "sha256:" + "0" * 64, ""])
)
json_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(max_size=12) | st.sampled_from(sorted(TOP_FIELDS)), inner,
                      max_size=4),
    max_leaves=12,
)


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every location inside ``doc`` (keys of objects, indices of lists)."""
    found = [prefix] if prefix else []
    if isinstance(doc, dict):
        for key, value in doc.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            found += _paths(value, (*prefix, index))
    return found


VALID_PATHS = _paths(valid())


def _assert_outcome(raw: object, parse: Any) -> None:
    """Parses (and then round-trips), or raises one ``SpecError`` naming a field."""
    try:
        spec = parse(raw)
    except SpecError as exc:
        message = str(exc)
        assert "\n" not in message, message
        if not exc.field:
            # Only a document that is no JSON object at all has no field to name.
            assert exc.reason.startswith(("not valid JSON", "expected a JSON object")), message
            return
        assert message.startswith(f"{exc.field}: "), message
        document = json.loads(raw) if isinstance(raw, str) else raw
        assert isinstance(document, dict), message
        keys = TOP_FIELDS | set(document) | {json.dumps(key) for key in document}
        assert any(exc.field == key or exc.field.startswith((f"{key}.", f"{key}["))
                   for key in keys), message
        return
    assert isinstance(spec, TrainSpec)
    assert parse_spec(json.loads(spec.to_json_text())) == spec


@PROPERTY_SETTINGS
@given(json_values)
def test_any_json_value_parses_or_names_a_field(raw: Any) -> None:
    _assert_outcome(raw, parse_spec)


@PROPERTY_SETTINGS
@given(st.data())
def test_a_mutated_valid_spec_parses_or_names_a_field(data: st.DataObject) -> None:
    doc = valid()
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(VALID_PATHS))
        *parents, last = path
        target: Any = doc
        try:
            for key in parents:
                target = target[key]
            action = data.draw(st.sampled_from(["replace", "delete", "add"]))
            if action == "replace":
                target[last] = data.draw(json_values)
            elif action == "delete":
                del target[last]
            elif isinstance(target, dict):
                target[data.draw(st.text(min_size=1, max_size=12))] = data.draw(json_values)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed or replaced this location
    _assert_outcome(copy.deepcopy(doc), parse_spec)


@PROPERTY_SETTINGS
@given(st.data())
def test_truncated_or_garbled_text_parses_or_names_a_field(data: st.DataObject) -> None:
    text = json.dumps(valid(), indent=2)
    start = data.draw(st.integers(0, len(text)))
    end = data.draw(st.integers(start, min(len(text), start + 8)))
    kind = data.draw(st.sampled_from(["truncate", "replace", "insert"]))
    if kind == "truncate":
        garbled = text[:start]
    else:
        noise = data.draw(st.text(min_size=1, max_size=6) | st.sampled_from(
            ["null", "1e999", "-0", "[]", "{}", '"', ",", "9" * 5000, "true"]))
        garbled = text[:start] + noise + text[end if kind == "replace" else start:]
    _assert_outcome(garbled, parse_spec_text)


def test_the_checker_refuses_an_error_naming_no_field_of_the_document() -> None:
    def misnamed(raw: object) -> TrainSpec:
        raise SpecError("nowhere.batchSize", "must be in [1, 4096], got 0")

    def crashing(raw: object) -> TrainSpec:
        raise KeyError("batchSize")

    with pytest.raises(AssertionError):
        _assert_outcome(valid(), misnamed)
    with pytest.raises(KeyError):
        _assert_outcome(valid(), crashing)


def test_a_pydantic_error_of_an_unforeseen_kind_still_names_its_field() -> None:
    class Probe(BaseModel):
        when: dict[str, int]

    try:
        Probe.model_validate({"when": {"a": "x"}})
    except ValidationError as exc:
        error = spec_error(exc)
        assert error.field == "when.a" and error.reason, str(error)
        return
    raise AssertionError("the probe validated")
