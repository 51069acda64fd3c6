"""The manifest's typed sections: manifests written by the current trainer read unchanged
(same bytes, same digest), wrong types are refused naming the field, and any well-typed
evaluation round-trips."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from warmstart import record

# As the trainer of format v1 writes it (train.py's report and train_loop's summary).
WRITTEN = {
    "format": "warmstart.dev/manifest/v1", "version": "week1", "lineage": "reviews",
    "task": "sequence-classification", "labels": ["negative", "positive"], "parent": None,
    "files": [{"name": "model.safetensors", "sha256": "sha256:" + "b" * 64, "size": 10}],
    "datasets": [],
    "metrics": {"holdout": {"uri": "s3://b/h.jsonl", "fromValidation": False,
                            "candidate": {"accuracy": 0.9, "f1": 0.88, "loss": 0.3,
                                          "examples": 40},
                            "parent": None},
                "replay": [], "validation": {"candidate": {"accuracy": 0.8}},
                "parentEvaluated": False,
                "parentNotEvaluatedReason": "the parent has no classification head"},
    "training": {"steps": 12, "epochs": 2.0, "stepsPerEpoch": 6, "bestStep": 12,
                 "bestEpoch": 2, "bestValidationLoss": 0.41, "stoppedEarly": False,
                 "trainSeconds": 3.2, "examplesSeen": 96, "samplesPerSecond": 30.1,
                 "resumedFromStep": None, "coldStart": False, "device": "cpu"},
    "hyperparameters": {"coldStart": False, "maxEpochs": 2, "learningRate": 0.001,
                        "earlyStopping": {"patience": 2, "minDelta": 0.0}},
    "software": {"torch": "2.5"}, "createdAt": "2026-12-02T00:00:00+00:00",
}


def test_a_current_manifest_reads_typed_and_keeps_its_bytes() -> None:
    raw = (json.dumps(WRITTEN, sort_keys=True, indent=2) + "\n").encode()
    manifest = record.parse_manifest(raw)
    assert manifest.evaluation.holdout is not None
    assert manifest.evaluation.holdout.candidate is not None
    assert manifest.evaluation.holdout.candidate.accuracy == 0.9
    assert manifest.evaluation.holdout.parent is None
    assert manifest.training_report.best_validation_loss == 0.41
    assert manifest.hyperparameter_set.learning_rate == 0.001
    assert manifest.to_bytes() == raw  # unknown keys kept: the digest is unchanged


@pytest.mark.parametrize(("section", "value", "where"), [
    ("metrics", {"holdout": {"candidate": {"accuracy": "high"}}},
     "metrics.holdout.candidate.accuracy"),
    ("training", {"steps": "many"}, "training.steps"),
    ("hyperparameters", {"seed": [1]}, "hyperparameters.seed"),
])
def test_a_wrong_type_is_refused_naming_the_field(section: str, value: object,
                                                  where: str) -> None:
    bad = {**WRITTEN, section: value}
    with pytest.raises(record.ManifestFormatError, match=where.replace(".", r"\.")):
        record.parse_manifest(json.dumps(bad).encode(), source="m.json")


scores = st.one_of(st.none(), st.fixed_dictionaries({
    "accuracy": st.floats(0, 1), "loss": st.floats(0, 10), "examples": st.integers(0, 10**6)}))


@given(candidate=scores, parent=scores, replays=st.lists(
    st.fixed_dictionaries({"uri": st.text(max_size=20), "candidate": scores,
                           "parent": scores}), max_size=3))
def test_any_well_typed_evaluation_round_trips(candidate: object, parent: object,
                                               replays: list[dict[str, object]]) -> None:
    metrics = {"holdout": {"candidate": candidate, "parent": parent}, "replay": replays}
    manifest = record.parse_manifest(json.dumps({**WRITTEN, "metrics": metrics}).encode())
    again = record.parse_manifest(manifest.to_bytes())
    assert again.evaluation == manifest.evaluation
    assert len(again.evaluation.replay) == len(replays)
