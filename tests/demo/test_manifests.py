"""The demo's changes to the example manifests: only what the local run needs."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from warmstart.demo import manifests as m
from warmstart.demo.errors import DemoError


def lineage() -> dict[str, Any]:
    return m.load(m.LINEAGE_EXAMPLE)


def test_each_example_holds_the_object_the_story_names() -> None:
    for example in m.ALL_EXAMPLES:
        doc = m.load(example)
        assert (doc["kind"], doc["metadata"]["name"]) == (example.kind, example.name)


def test_a_file_holding_another_object_is_refused(tmp_path: Any) -> None:
    (tmp_path / "lineage.yaml").write_text("kind: ModelLineage\nmetadata: {name: other}\n")
    with pytest.raises(DemoError, match="expected exactly one ModelLineage named "
                       "reviews-classifier"):
        m.load(m.LINEAGE_EXAMPLE, examples=tmp_path)


def test_secret_takes_the_real_values_and_keeps_name_and_type() -> None:
    doc = m.load(m.SECRET_EXAMPLE)
    values = {"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s",
              "AWS_ENDPOINT_URL": "http://127.0.0.1:1", "AWS_REGION": "us-east-1"}
    secret = m.secret_with(doc, values)
    assert secret["stringData"] == values
    assert secret["metadata"] == doc["metadata"] and secret["type"] == doc["type"]
    assert "replace-with" in str(doc["stringData"])  # the file's own copy is untouched


def test_lineage_for_demo_suspends_the_schedule_and_changes_nothing_else() -> None:
    original = lineage()
    kept = copy.deepcopy(original)
    doc = m.lineage_for_demo(original)
    assert doc["spec"]["retraining"]["suspend"] is True
    doc["spec"]["retraining"].pop("suspend")
    assert doc == kept
    assert original == kept


def test_lineage_for_demo_sets_replays_pin_and_promotion_overrides() -> None:
    doc = m.lineage_for_demo(lineage(), replay_keys=["week0/eval.jsonl", "week1/eval.jsonl"],
                             pinned="reviews-week1", promotion={"minValue": 0.55})
    spec = doc["spec"]
    assert spec["evaluation"]["replayURIs"] == [
        "s3://warmstart-demo/datasets/reviews/week0/eval.jsonl",
        "s3://warmstart-demo/datasets/reviews/week1/eval.jsonl",
    ]
    assert spec["pinnedVersion"] == "reviews-week1"
    assert spec["promotion"]["minValue"] == 0.55
    assert spec["promotion"]["maxReplayRegression"] == lineage()["spec"]["promotion"][
        "maxReplayRegression"]


def test_job_overrides_merge_early_stopping_and_replace_scalars() -> None:
    doc = m.load(m.JOB_EXAMPLES[m.WEEK1])
    changed = m.job_for_demo(doc, {"maxEpochs": 1, "earlyStopping": {"patience": 3}})
    training = changed["spec"]["training"]
    assert training["maxEpochs"] == 1
    assert training["earlyStopping"] == {**doc["spec"]["training"]["earlyStopping"],
                                         "patience": 3}
    assert doc["spec"]["training"]["maxEpochs"] != 1
    assert m.job_for_demo(doc, None) == doc


def test_storage_uris_and_bucket() -> None:
    versions, base, datasets = m.storage_uris(lineage())
    assert versions == "s3://warmstart-demo/lineages/reviews-classifier/"
    assert base == "s3://warmstart-demo/lineages/reviews-classifier/base/"
    assert datasets == "s3://warmstart-demo/datasets/reviews/"
    assert m.bucket_of(versions) == "warmstart-demo"
    with pytest.raises(DemoError, match="want s3://"):
        m.bucket_of("gs://elsewhere/x")
