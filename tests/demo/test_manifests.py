"""The demo's changes to the example manifests: only what the local run needs."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from warmstart import signing
from warmstart.demo import manifests as m
from warmstart.demo.errors import DemoError
from warmstart.demo.story import swapped_labels


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


def test_the_demo_key_replaces_the_placeholder_and_keeps_its_name() -> None:
    placeholder = lineage()["spec"]["signing"]["trustedKeys"]
    assert "REPLACE_WITH_YOUR_SIGNING_PUBLIC_KEY" in placeholder[0]["publicKey"]
    pem = signing.public_key_pem(signing.generate_private_key_pem()).decode()
    doc = m.lineage_for_demo(lineage(), signing_key=pem)
    assert doc["spec"]["signing"]["trustedKeys"] == [
        {"name": placeholder[0]["name"], "publicKey": pem}
    ]
    assert doc["spec"]["signing"]["secretRef"] == {"name": m.SIGNING_SECRET}
    assert m.lineage_for_demo(lineage())["spec"]["signing"]["trustedKeys"] == placeholder
    unsigned = copy.deepcopy(lineage())
    del unsigned["spec"]["signing"]
    with pytest.raises(DemoError, match=r"no spec\.signing\.trustedKeys"):
        m.lineage_for_demo(unsigned, signing_key=pem)


def test_signing_secret_holds_the_key_under_the_name_the_operator_mounts() -> None:
    secret = m.signing_secret("PEM")
    assert secret["metadata"]["name"] == lineage()["spec"]["signing"]["secretRef"]["name"]
    assert secret["stringData"] == {signing.SIGNING_KEY_SECRET_KEY: "PEM"}


def test_tamper_check_pod_runs_the_serving_template_outside_the_deployment() -> None:
    deployment = m.load(m.DEPLOYMENT_EXAMPLE)
    env = {"WARMSTART_MODEL_URI": "s3://b/l/v2/", "WARMSTART_WORKDIR": "/elsewhere"}
    pod = m.tamper_check_pod(deployment, env)
    assert pod["kind"] == "Pod" and pod["metadata"]["name"] == m.TAMPER_CHECK_POD
    selector = deployment["spec"]["selector"]["matchLabels"]
    labels = pod["metadata"]["labels"]
    assert any(labels.get(k) != v for k, v in selector.items())  # the Deployment won't adopt it
    container = pod["spec"]["containers"][0]
    template = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == template["command"]
    assert container["readinessProbe"] == template["readinessProbe"]
    values = {e["name"]: e.get("value") for e in container["env"]}
    assert values["WARMSTART_MODEL_URI"] == "s3://b/l/v2/"
    assert values["WARMSTART_WORKDIR"] == "/elsewhere"  # replaced, not duplicated
    assert [e["name"] for e in container["env"]].count("WARMSTART_WORKDIR") == 1
    assert pod["spec"]["securityContext"] == deployment["spec"]["template"]["spec"][
        "securityContext"]
    assert deployment["spec"]["template"]["spec"].get("restartPolicy") is None  # a copy


def test_swapped_labels_change_only_the_label_names_and_keep_the_size() -> None:
    config = json.dumps({"model_type": "bert", "id2label": {"0": "negative", "1": "positive"},
                         "label2id": {"negative": 0, "positive": 1}}, indent=2).encode()
    tampered = swapped_labels(config)
    assert len(tampered) == len(config) and tampered != config
    swapped = json.loads(tampered)
    assert swapped["id2label"] == {"0": "positive", "1": "negative"}
    assert swapped["label2id"] == {"positive": 0, "negative": 1}
    assert swapped["model_type"] == "bert"
    unlabelled = b'{"model_type": "bert"}'
    assert swapped_labels(unlabelled) != unlabelled
    assert json.loads(swapped_labels(unlabelled)) == json.loads(unlabelled)
