"""What the demo prints from what the operator and the model server report."""

from __future__ import annotations

from typing import Any

import pytest

from warmstart.demo.compare import RunResult, comparison
from warmstart.demo.console import elapsed, table
from warmstart.demo.errors import DemoError
from warmstart.demo.predict import parse_response, request_body
from warmstart.demo.watch import failure_message, phase_of


def wsj(name: str, cold: bool, accuracy: float, seconds: float) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {"coldStart": cold},
        "status": {
            "phase": "Succeeded",
            "parent": {"version": "reviews-week1"},
            "metrics": {
                "candidate": {"accuracy": accuracy, "f1": accuracy - 0.01},
                "parent": {"accuracy": 0.74},
                "replay": [{"uri": "s3://b/week0.jsonl", "candidate": {"accuracy": 0.5}},
                           {"uri": "s3://b/week1.jsonl", "candidate": {"accuracy": 0.8}}],
            },
            "training": {"steps": 50, "stoppedEarly": not cold, "seconds": seconds,
                         "bestValidationLoss": 0.69 if cold else 0.4751},
        },
    }


def test_run_result_takes_holdout_newest_replay_and_manifest_best_step() -> None:
    run = RunResult.from_objects(wsj("w", False, 0.78, 41.4), {"bestStep": 25})
    assert (run.accuracy, run.replay_accuracy, run.parent_accuracy) == (0.78, 0.8, 0.74)
    assert (run.best_step, run.steps, run.seconds, run.cold) == (25, 50, 41.4, False)
    assert run.best_loss == 0.4751


def test_run_result_of_a_job_without_status_has_no_numbers() -> None:
    run = RunResult.from_objects({"metadata": {"name": "x"}, "spec": {}}, {})
    assert run.accuracy is None and run.best_step is None and run.replay_accuracy is None


def test_comparison_puts_warm_and_cold_side_by_side() -> None:
    warm = RunResult.from_objects(wsj("reviews-week2", False, 0.781, 41.4), {"bestStep": 25})
    cold = RunResult.from_objects(wsj("reviews-week2-cold", True, 0.58, 70.2), {"bestStep": 50})
    lines = comparison(warm, cold, "week-1 replay")
    assert "week-1 replay accuracy" in lines[0]
    assert lines[2].startswith("warm start from reviews-week1 [reviews-week2]")
    assert "0.781" in lines[2] and " 25 (0.475) " in lines[2] and "50 (early stop)" in lines[2]
    assert lines[3].startswith("cold start (random init) [reviews-week2-cold]")
    assert "0.580" in lines[3] and "50 (epoch cap)" in lines[3] and lines[3].endswith("70 s")
    assert lines[-1] == "(the parent, reviews-week1, scores 0.740 on the same holdout)"


def test_table_aligns_columns() -> None:
    assert table(["a", "bb"], [["ccc", "d"]]) == ["a    bb", "---  --", "ccc  d"]


def test_elapsed() -> None:
    assert elapsed(0) == "0:00" and elapsed(61.9) == "1:01" and elapsed(600) == "10:00"


def test_infer_round_trip() -> None:
    texts = ("good", "bad")
    body = request_body(texts)
    assert body["inputs"][0]["data"] == ["good", "bad"] and body["inputs"][0]["shape"] == [2]
    version, predictions = parse_response(texts, {
        "model_version": "reviews-week1",
        "outputs": [
            {"name": "label", "data": ["positive", "negative"]},
            {"name": "probabilities", "shape": [2, 2], "data": [0.1, 0.9, 0.8, 0.2]},
        ],
    })
    assert version == "reviews-week1"
    assert [(p.label, p.confidence) for p in predictions] == [("positive", 0.9),
                                                               ("negative", 0.8)]


def test_an_answer_without_labels_is_an_error() -> None:
    with pytest.raises(DemoError, match="unexpected answer"):
        parse_response(("good",), {"outputs": []})


def test_phase_and_failure_reason() -> None:
    assert phase_of({}) == "Pending"
    failed = {"status": {"phase": "Failed", "conditions": [
        {"type": "ParentResolved", "status": "True", "reason": "ParentResolved"},
        {"type": "Failed", "status": "True", "reason": "ParentNotFound",
         "message": "no version x"}]}}
    assert phase_of(failed) == "Failed"
    assert failure_message(failed) == "ParentNotFound: no version x"
    assert failure_message({"status": {}}) == "no condition says why"
