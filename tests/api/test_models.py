"""The pydantic models: they read the examples, fill the documented defaults and speak
camelCase on the wire."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from warmstart.api import (
    Condition,
    ModelLineage,
    ModelLineageSpec,
    WarmStartJob,
    WarmStartJobSpec,
    find_condition,
    set_condition,
)
from warmstart.api.constants import ConditionStatus, Metric, MetricMode
from warmstart.api.modellineage import Promotion
from warmstart.api.warmstartjob import EarlyStopping
from warmstart.casing import camel_alias

from .builders import make_lineage, make_wsj

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
KIND_MODELS: dict[str, type[WarmStartJob] | type[ModelLineage]] = {
    "WarmStartJob": WarmStartJob,
    "ModelLineage": ModelLineage,
}


def example_documents() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(EXAMPLES.rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            found.append((f"{path.relative_to(EXAMPLES)}:{doc['kind']}", doc))
    return found


def warmstart_examples() -> list[Any]:
    return [
        pytest.param(doc, id=ident)
        for ident, doc in example_documents()
        if doc["kind"] in KIND_MODELS
    ]


def test_examples_cover_every_kind_and_both_start_kinds() -> None:
    docs = [doc for _, doc in example_documents()]
    kinds = {doc["kind"] for doc in docs}
    assert {"Secret", "ModelLineage", "WarmStartJob"} <= kinds
    cold = [d.get("spec", {}).get("coldStart", False) for d in docs if d["kind"] == "WarmStartJob"]
    assert set(cold) == {False, True}


@pytest.mark.parametrize("doc", warmstart_examples())
def test_model_reads_example_without_losing_a_field(doc: dict[str, Any]) -> None:
    parsed = KIND_MODELS[doc["kind"]].model_validate(doc)
    # exclude_unset: exactly what the file said; a field the model does not know would be
    # dropped here and the comparison would fail.
    assert parsed.spec.model_dump(mode="json", by_alias=True, exclude_unset=True) == doc["spec"]


def test_example_names_are_the_ones_the_demo_uses() -> None:
    names = {(doc["kind"], doc["metadata"]["name"]) for _, doc in example_documents()}
    assert names == {
        ("Secret", "reviews-s3"),
        ("ModelLineage", "reviews-classifier"),
        ("WarmStartJob", "reviews-week1"),
        ("WarmStartJob", "reviews-week1-cold"),
        ("Deployment", "reviews-classifier"),
        ("WarmStartJob", "reviews-week2"),
        ("WarmStartJob", "reviews-week2-cold"),
        ("WarmStartJob", "reviews-week3-mislabelled"),
    }


def test_examples_reference_each_other() -> None:
    docs = {(doc["kind"], doc["metadata"]["name"]): doc for _, doc in example_documents()}
    lineage = docs[("ModelLineage", "reviews-classifier")]
    assert lineage["spec"]["storage"]["secretRef"]["name"] == "reviews-s3"
    for name in ("reviews-week1", "reviews-week1-cold", "reviews-week2", "reviews-week2-cold",
                 "reviews-week3-mislabelled"):
        assert docs[("WarmStartJob", name)]["spec"]["lineageRef"]["name"] == "reviews-classifier"


@pytest.mark.parametrize(
    ("snake", "camel"),
    [
        ("train_uri", "trainURI"),
        ("replay_uris", "replayURIs"),
        ("uri", "uri"),
        ("max_seq_length", "maxSeqLength"),
        ("model_uri_env", "modelURIEnv"),
        ("api_version", "apiVersion"),
    ],
)
def test_camel_alias_capitalises_acronyms_like_kubernetes(snake: str, camel: str) -> None:
    assert camel_alias(snake) == camel


def test_job_spec_defaults_match_the_documented_ones() -> None:
    spec = WarmStartJobSpec.model_validate(make_wsj("a").obj()["spec"]).to_api()
    assert spec["parent"] == {"version": "serving"}
    assert spec["coldStart"] is False
    assert spec["suspend"] is False
    assert spec["backoffLimit"] == 3
    assert spec["dataset"]["textField"] == "text"
    assert spec["dataset"]["labelField"] == "label"
    assert spec["training"] == {
        "maxEpochs": 5,  # learningRate unset: the trainer's warm or cold default
        "batchSize": 16,
        "maxSeqLength": 128,
        "seed": 42,
        "checkpointEverySteps": 500,
        "warmupRatio": 0.0,
        "gradClipNorm": 1.0,
    }
    assert spec["resources"] == {"gpus": 0}
    assert "promotion" not in spec  # unset: the lineage's policy applies


def test_lineage_spec_defaults_match_the_documented_ones() -> None:
    spec = ModelLineageSpec.model_validate(make_lineage("m").obj()["spec"]).to_api()
    assert spec["task"] == "sequence-classification"
    assert spec["promotion"] == {"metric": "accuracy", "minImprovement": 0.0, "policy": "Manual"}
    assert spec["retention"] == {"keepVersions": 10}


def test_python_side_refuses_bounds_the_crd_also_enforces() -> None:
    with pytest.raises(ValidationError, match="maxEpochs"):
        WarmStartJobSpec.model_validate(make_wsj("a").epochs(0).obj()["spec"])
    with pytest.raises(ValidationError, match="labels"):
        ModelLineageSpec.model_validate(make_lineage("m").labels("only-one").obj()["spec"])


def test_a_sweep_is_a_set_of_rates_and_excludes_learning_rate() -> None:
    doc = make_wsj("a").obj()["spec"]
    doc["training"] = {"learningRates": [1e-4, 3e-5]}
    spec = WarmStartJobSpec.model_validate(doc)
    assert spec.training.learning_rates == [1e-4, 3e-5]
    doc["training"] = {"learningRates": [1e-4], "learningRate": 1e-4}
    with pytest.raises(ValidationError, match="learningRate or learningRates"):
        WarmStartJobSpec.model_validate(doc)
    doc["training"] = {"learningRates": [2.0]}
    with pytest.raises(ValidationError, match="learningRates"):
        WarmStartJobSpec.model_validate(doc)


@pytest.mark.parametrize(
    ("given", "cold_start", "expected"),
    [
        (EarlyStopping(), False, (2, 0.001)),
        (EarlyStopping(), True, (6, 0.0)),
        (EarlyStopping(patience=7), True, (7, 0.0)),
        (EarlyStopping(min_delta=0.0), False, (2, 0.0)),
    ],
)
def test_early_stopping_defaults_depend_on_start_kind(
    given: EarlyStopping, cold_start: bool, expected: tuple[int, float]
) -> None:
    assert given.resolved(cold_start=cold_start) == expected


@pytest.mark.parametrize(
    ("metric", "mode", "expected"),
    [
        (Metric.ACCURACY, None, MetricMode.MAX),
        (Metric.F1, None, MetricMode.MAX),
        (Metric.LOSS, None, MetricMode.MIN),
        (Metric.LOSS, MetricMode.MIN, MetricMode.MIN),
    ],
)
def test_promotion_mode_follows_metric_unless_set(
    metric: Metric, mode: MetricMode | None, expected: MetricMode
) -> None:
    assert Promotion(metric=metric, mode=mode).effective_mode() == expected


def _condition(status: ConditionStatus, at: datetime, reason: str = "R") -> Condition:
    return Condition(
        type="Ready", status=status, reason=reason, message="m", last_transition_time=at
    )


def test_set_condition_keeps_transition_time_while_status_is_unchanged() -> None:
    first = datetime(2025, 1, 1, tzinfo=UTC)
    later = first + timedelta(hours=1)
    conditions = set_condition([], _condition(ConditionStatus.TRUE, first))
    conditions = set_condition(conditions, _condition(ConditionStatus.TRUE, later, "Other"))
    ready = find_condition(conditions, "Ready")
    assert ready is not None
    assert ready.last_transition_time == first
    assert ready.reason == "Other"  # everything but the time is the new condition's


def test_set_condition_moves_transition_time_when_status_changes() -> None:
    first = datetime(2025, 1, 1, tzinfo=UTC)
    later = first + timedelta(hours=1)
    conditions = set_condition([], _condition(ConditionStatus.TRUE, first))
    conditions = set_condition(conditions, _condition(ConditionStatus.FALSE, later))
    assert len(conditions) == 1
    assert conditions[0].last_transition_time == later


def test_condition_serialises_as_metav1_condition() -> None:
    at = datetime(2025, 1, 1, tzinfo=UTC)
    assert _condition(ConditionStatus.TRUE, at).to_api() == {
        "type": "Ready",
        "status": "True",
        "reason": "R",
        "message": "m",
        "lastTransitionTime": "2025-01-01T00:00:00Z",
    }
