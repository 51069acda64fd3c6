"""The training spec: valid documents parse, and every error names its field."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from warmstart.trainspec import (
    DatasetSpec,
    SpecError,
    TrainingSpec,
    TrainSpec,
    parse_spec,
    parse_spec_text,
)

DIGEST = "sha256:" + "ab" * 32


def valid() -> dict[str, Any]:
    return {
        "lineage": {"name": "reviews", "labels": ["negative", "positive"]},
        "version": "v3",
        "parent": {"uri": "s3://models/reviews/v2", "manifestDigest": DIGEST, "version": "v2"},
        "dataset": {"trainURI": "s3://data/reviews/2024-05.jsonl", "validationFraction": 0.2},
        "training": {"maxEpochs": 4, "learningRate": 3e-5, "earlyStopping": {"patience": 3}},
        "evaluation": {
            "holdoutURI": "s3://data/reviews/holdout.csv",
            "replayURIs": ["s3://data/reviews/2024-04-eval.jsonl"],
        },
        "output": {"uri": "s3://models/reviews/v3/"},
    }


def test_valid_spec_parses_with_defaults_and_round_trips() -> None:
    spec = parse_spec(valid())
    assert spec.parent.uri == "s3://models/reviews/v2/"  # prefixes kept with one slash
    assert spec.training.batch_size == 32 and spec.training.seed == 42
    assert spec.early_stopping == (3, 1e-3)  # patience given, warm minDelta default
    assert parse_spec(json.loads(spec.to_json_text())) == spec


def test_early_stopping_defaults_differ_for_warm_and_cold_starts() -> None:
    doc = valid()
    del doc["training"]["earlyStopping"]
    warm = parse_spec(doc)
    cold = parse_spec({**doc, "coldStart": True})
    assert warm.early_stopping == (2, 1e-3)
    assert cold.early_stopping == (6, 0.0)
    assert warm.training.evals_per_epoch_for(cold_start=False) == 1
    assert cold.training.evals_per_epoch_for(cold_start=True) == 2


def test_learning_rate_defaults_by_start_and_a_sweep_round_trips() -> None:
    doc = valid()
    del doc["training"]["learningRate"]
    warm, cold = parse_spec(doc), parse_spec({**doc, "coldStart": True})
    assert warm.training.learning_rates_for(cold_start=False) == (5e-5,)
    assert cold.training.learning_rates_for(cold_start=True) == (1e-4,)
    doc["training"]["learningRates"] = [1e-4, 3e-5]
    swept = parse_spec(doc)
    assert swept.training.learning_rates_for(cold_start=True) == (1e-4, 3e-5)
    assert parse_spec(json.loads(swept.to_json_text())) == swept


@pytest.mark.parametrize(
    ("rates", "message"),
    [
        ([1e-4, 1e-4], "learningRates: lists the same rate twice"),
        ([0.0], "learningRates[0]: must be > 0"),
        ([2.0], "learningRates[0]: must be <= 1"),
        (["fast"], "learningRates: must be a list of numbers"),
        ([1e-5] * 9, "learningRates: at most 8 rates"),
    ],
)
def test_bad_sweeps_name_the_field(rates: list[Any], message: str) -> None:
    doc = valid()
    del doc["training"]["learningRate"]
    doc["training"]["learningRates"] = rates
    with pytest.raises(SpecError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_spec(doc)


def test_a_sweep_and_a_single_rate_are_exclusive() -> None:
    doc = valid()
    doc["training"]["learningRates"] = [1e-4]
    with pytest.raises(SpecError, match="set learningRate or learningRates"):
        parse_spec(doc)


def _set(doc: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for key in parents:
        doc = doc.setdefault(key, {})
    if value is _DELETE:
        del doc[last]
    else:
        doc[last] = value


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        ("training.learningRate", -1, "training.learningRate"),
        ("training.learningRate", "fast", "training.learningRate"),
        ("training.maxEpochs", 0, "training.maxEpochs"),
        ("training.batchSize", 1.5, "training.batchSize"),
        ("training.learningrate", 0.1, "training.learningrate: unknown field"),
        ("training.earlyStopping.patience", 0, "training.earlyStopping.patience"),
        ("training.earlyStopping.minDelta", -0.1, "training.earlyStopping.minDelta"),
        ("training.checkpointEverySteps", -5, "training.checkpointEverySteps"),
        ("dataset.trainURI", _DELETE, "dataset.trainURI: is required"),
        ("dataset.trainURI", "http://x/y.jsonl", "dataset.trainURI"),
        ("dataset.trainURI", "s3://data/train.txt", "dataset.trainURI"),
        ("dataset.validationURI", "s3://data/v.jsonl", "dataset.validationFraction"),
        ("dataset.validationFraction", 1.5, "dataset.validationFraction"),
        ("dataset.labelField", "text", "dataset.labelField"),
        ("parent.manifestDigest", "sha256:123", "parent.manifestDigest"),
        ("parent", _DELETE, "parent: is required"),
        ("lineage.labels", ["a"], "lineage.labels"),
        ("lineage.labels", ["a", "a"], "lineage.labels"),
        ("lineage.name", "Reviews!", "lineage.name"),
        ("lineage.task", "translation", "lineage.task"),
        ("evaluation.replayURIs", "s3://x/y.jsonl", "evaluation.replayURIs"),
        ("evaluation.replayURIs", ["s3://xyz/y.jsonl", "ftp://z"], "evaluation.replayURIs[1]"),
        ("output.uri", "s3://models/reviews/v2/", "output.uri"),
        ("version", "V3", "version"),
        ("coldStart", "yes", "coldStart"),
        ("specVersion", "warmstart.dev/trainspec/v9", "specVersion"),
        ("extra", 1, "extra: unknown field"),
    ],
)
def test_invalid_spec_names_the_field(path: str, value: Any, field: str) -> None:
    doc = copy.deepcopy(valid())
    _set(doc, path, value)
    with pytest.raises(SpecError) as caught:
        parse_spec(doc)
    assert str(caught.value).startswith(field), str(caught.value)
    assert "\n" not in str(caught.value)


def test_invalid_json_is_a_spec_error() -> None:
    with pytest.raises(SpecError, match="not valid JSON"):
        parse_spec_text("{")


def test_bad_spec_exits_2_with_one_line_naming_the_field(tmp_path: Path) -> None:
    doc = valid()
    doc["training"]["batchSize"] = 0
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(doc))
    termination = tmp_path / "termination-log"
    result = subprocess.run(
        [sys.executable, "-m", "warmstart_trainer", "train", "--spec", str(spec)],
        capture_output=True,
        text=True,
        timeout=120,
        env={
            "TERMINATION_MESSAGE_PATH": str(termination),
            "WARMSTART_WORKDIR": str(tmp_path / "w"),
            "PATH": "/usr/bin:/bin",
        },
        check=False,
    )
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == ["error: invalid spec: training.batchSize: must be in [1, 4096], got 0"]
    summary = json.loads(termination.read_text())
    assert summary["result"] == "Failed" and summary["exitCode"] == 2
    assert "training.batchSize" in summary["error"]


def test_spec_type_is_frozen() -> None:
    spec: TrainSpec = parse_spec(valid())
    with pytest.raises(ValidationError, match="frozen"):
        spec.version = "v9"  # type: ignore[misc]
    assert spec.version == "v3"


def test_models_built_in_python_raise_spec_errors_naming_the_field() -> None:
    # The operator builds specs from WarmStartJob fields by their Python names.
    with pytest.raises(SpecError, match=r"^learningRates\[1\]: must be > 0, got 0.0$"):
        TrainingSpec(learning_rates=(1e-4, 0.0))
    with pytest.raises(SpecError, match=r"^validationFraction: set validationURI or"):
        DatasetSpec(train_uri="s3://data/t.jsonl", validation_uri="s3://data/v.jsonl",
                    validation_fraction=0.2)
    assert DatasetSpec(train_uri="s3://data/t.jsonl").validation_fraction == 0.1


def test_the_wire_spells_fields_in_camel_case_only() -> None:
    doc = valid()
    doc["dataset"] = {"train_uri": doc["dataset"]["trainURI"]}
    with pytest.raises(SpecError, match=r"^dataset\.train_uri: unknown field$"):
        parse_spec(doc)


def test_null_means_not_set() -> None:
    doc = valid()
    doc["training"]["batchSize"] = None
    assert parse_spec(doc).training.batch_size == 32
    doc["version"] = None
    with pytest.raises(SpecError, match=r"^version: is required$"):
        parse_spec(doc)
