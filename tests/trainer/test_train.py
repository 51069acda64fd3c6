"""End-to-end training runs on a tiny BERT with file:// storage (no server needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.trainer.conftest import Lineage
from tests.trainer.support import publish_dir, sentiment_rows, write_jsonl
from warmstart import provenance, record, storage
from warmstart.trainspec import parse_spec
from warmstart_trainer.data import TextTokenizer, encode_set, read_labelled_file
from warmstart_trainer.errors import RefusedError, TrainerError
from warmstart_trainer.evaluate import evaluate
from warmstart_trainer.modeling import load_classifier, load_tokenizer
from warmstart_trainer.train import run_train

CPU = torch.device("cpu")


def _listing(store: storage.Storage, prefix: str) -> list[str]:
    return [info.uri[len(prefix) :] for info in store.list(prefix)]


def _encoder(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Encoder weights keyed as in a bare BertModel checkpoint."""
    return {
        key.removeprefix("bert."): value
        for key, value in weights.items()
        if not key.startswith("classifier.")
    }


def test_warm_start_trains_from_parent_weights_and_commits_a_version(
    lineage: Lineage, tmp_path: Path
) -> None:
    # A learning rate too small to move any weight measurably: the result must still be the
    # parent's encoder, which only holds if the parent's weights were loaded.
    spec = lineage.spec().training(learningRate=1e-9, maxEpochs=1).spec()
    outcome = run_train(spec, lineage.store, tmp_path / "work", device=CPU)

    out = spec.output.uri
    names = _listing(lineage.store, out)
    assert record.MANIFEST_NAME in names and "model.safetensors" in names
    assert not any(name.startswith("_progress") for name in names)
    data = lineage.store.get_bytes(out + record.MANIFEST_NAME)
    assert record.manifest_digest(data) == outcome.manifest_digest
    manifest = record.parse_manifest(data)
    assert manifest.parent == record.ParentRef("v0", lineage.base_uri, lineage.base_digest)
    assert manifest.labels == ("negative", "positive")
    assert {"config.json", "model.safetensors", "tokenizer.json", "metrics.jsonl"} <= set(
        manifest.file_names
    )
    assert [ref.role for ref in manifest.datasets] == ["train", "validation"]
    assert manifest.metrics["parentEvaluated"] is False  # a base has no head to compare
    assert manifest.training["coldStart"] is False
    assert manifest.hyperparameters["earlyStopping"] == {"patience": 2, "minDelta": 0.001}

    parent = _encoder(load_file(str(lineage.base_dir / "model.safetensors")))
    child = _encoder(load_file(str(tmp_path / "work" / "output" / "model.safetensors")))
    assert parent.keys() <= child.keys()
    for key, tensor in parent.items():
        assert torch.allclose(child[key], tensor, atol=1e-5), key


def test_cold_start_uses_random_weights_of_the_same_architecture(
    lineage: Lineage, tmp_path: Path
) -> None:
    spec = lineage.spec().cold().training(learningRate=1e-9, maxEpochs=1).spec()
    outcome = run_train(spec, lineage.store, tmp_path / "work", device=CPU)

    parent = _encoder(load_file(str(lineage.base_dir / "model.safetensors")))
    child = _encoder(load_file(str(tmp_path / "work" / "output" / "model.safetensors")))
    matrices = [key for key, tensor in parent.items() if tensor.ndim >= 2]
    assert matrices
    for key in matrices:
        assert child[key].shape == parent[key].shape, key
        assert not torch.allclose(child[key], parent[key], atol=1e-3), key
    manifest = outcome.manifest
    assert manifest.training["coldStart"] is True
    # Cold defaults: patience counted in evaluations, two per epoch, recorded as resolved.
    assert manifest.hyperparameters["earlyStopping"] == {"patience": 6, "minDelta": 0.0}
    assert manifest.hyperparameters["evalsPerEpoch"] == 2
    # It started from random weights: the base is what it is compared with, not its parent.
    assert manifest.parent is None
    assert manifest.compared_with is not None
    assert manifest.compared_with.manifest_digest == spec.parent.manifest_digest
    # A rate of 1e-9 learns nothing: the candidate predicts one class, and says so.
    majority = manifest.evaluation.majority_class
    assert majority is not None and majority.flagged and majority.share == 1.0
    assert outcome.summary()["majorityClass"] is True


def test_digest_mismatch_refuses_to_train_and_uploads_nothing(
    lineage: Lineage, tmp_path: Path
) -> None:
    wrong = "sha256:" + "0" * 64
    doc = lineage.spec().obj()
    doc["parent"]["manifestDigest"] = wrong
    spec = parse_spec(doc)
    with pytest.raises(RefusedError, match="digest mismatch"):
        run_train(spec, lineage.store, tmp_path / "work", device=CPU)
    assert lineage.store.list(spec.output.uri) == []


def test_altered_parent_file_is_refused(lineage: Lineage, tmp_path: Path) -> None:
    weights = lineage.base_uri + "model.safetensors"
    data = bytearray(lineage.store.get_bytes(weights))
    data[-1] ^= 0x01
    lineage.store.put_bytes(weights, bytes(data))
    spec = lineage.spec().spec()
    with pytest.raises(RefusedError, match=r"model\.safetensors"):
        run_train(spec, lineage.store, tmp_path / "work", device=CPU)
    assert lineage.store.list(spec.output.uri) == []


@pytest.mark.parametrize("listed", [True, False], ids=["listed-in-manifest", "stray-file"])
def test_pickle_file_in_parent_is_refused(lineage: Lineage, tmp_path: Path, listed: bool) -> None:
    checkpoint = tmp_path / "pickled"
    checkpoint.mkdir()
    for path in lineage.base_dir.iterdir():
        (checkpoint / path.name).write_bytes(path.read_bytes())
    uri = f"{lineage.storage_uri}pickled/"
    if listed:
        # Publishing refuses too, so write the manifest by hand as a malicious writer would.
        (checkpoint / "pytorch_model.bin").write_bytes(b"\x80\x04not really a pickle")
        names = sorted(p.name for p in checkpoint.iterdir())
        files = record.build_file_entries(checkpoint, names)
        for entry in files:
            lineage.store.upload_file(checkpoint / entry.name, uri + entry.name)
        manifest = record.Manifest(
            version="pickled",
            lineage="reviews",
            task="sequence-classification",
            labels=(),
            parent=None,
            files=files,
            created_at="2024-01-01T00:00:00Z",
        )
        data = manifest.to_bytes()
        lineage.store.put_bytes(uri + record.MANIFEST_NAME, data)
        digest = record.manifest_digest(data)
    else:
        digest = publish_dir(lineage.store, checkpoint, uri)
        lineage.store.put_bytes(uri + "extra/optimizer.pt", b"\x80\x04")
    doc = lineage.spec().obj()
    doc["parent"].update(uri=uri, manifestDigest=digest)
    spec = parse_spec(doc)
    with pytest.raises(RefusedError, match="pickle"):
        run_train(spec, lineage.store, tmp_path / "work", device=CPU)
    assert lineage.store.list(spec.output.uri) == []


class RecordingStorage(storage.Storage):
    """Storage that records every write and can fail one chosen upload."""

    def __init__(self, fail_on: str | None = None) -> None:
        super().__init__()
        self.writes: list[str] = []
        self.fail_on = fail_on

    def upload_file(self, path: Path, uri: str) -> None:
        if self.fail_on and uri.endswith(self.fail_on):
            raise storage.StorageUnavailableError(f"{uri}: injected failure")
        super().upload_file(path, uri)
        self.writes.append(uri)

    def put_bytes(self, uri: str, data: bytes, *, content_type: str | None = None) -> None:
        super().put_bytes(uri, data, content_type=content_type)
        self.writes.append(uri)


def test_manifest_is_written_last(lineage: Lineage, tmp_path: Path) -> None:
    recorder = RecordingStorage()
    spec = lineage.spec().training(maxEpochs=1, checkpointEverySteps=3).spec()
    outcome = run_train(spec, recorder, tmp_path / "work", device=CPU)
    version_writes = [uri for uri in recorder.writes if "/_progress/" not in uri]
    # Every file the manifest lists, then the (unsigned: no key) provenance, the manifest last.
    assert version_writes[-1] == spec.output.uri + record.MANIFEST_NAME
    assert sorted(version_writes[:-1]) == sorted(
        [spec.output.uri + f.name for f in outcome.manifest.files]
        + [spec.output.uri + provenance.PROVENANCE_NAME])
    assert any("/_progress/" in uri for uri in recorder.writes)  # checkpoints were written


def test_failure_before_the_manifest_leaves_no_version(lineage: Lineage, tmp_path: Path) -> None:
    recorder = RecordingStorage(fail_on="/v1/model.safetensors")
    spec = lineage.spec().training(maxEpochs=1).spec()
    with pytest.raises(storage.StorageError, match="injected"):
        run_train(spec, recorder, tmp_path / "work", device=CPU)
    assert not lineage.store.exists(spec.output.uri + record.MANIFEST_NAME)


def test_rerun_after_commit_is_a_no_op(lineage: Lineage, tmp_path: Path) -> None:
    spec = lineage.spec().training(maxEpochs=1).spec()
    first = run_train(spec, lineage.store, tmp_path / "work", device=CPU)
    recorder = RecordingStorage()
    again = run_train(spec, recorder, tmp_path / "work2", device=CPU)
    assert again.already_committed and again.manifest_digest == first.manifest_digest
    assert recorder.writes == []


def test_early_stopping_restores_the_best_epoch(lineage: Lineage, tmp_path: Path) -> None:
    # Validation labels are the opposite of training labels: the better the model learns the
    # training data, the worse its validation loss, so the first epoch is the best one.
    validation = write_jsonl(tmp_path / "flipped.jsonl", sentiment_rows(32, seed=5, flip=True))
    spec = (
        lineage.spec()
        .dataset(validationURI=validation, validationFraction=None)
        .training(maxEpochs=8, learningRate=3e-3, earlyStopping={"patience": 2})
        .spec()
    )
    outcome = run_train(spec, lineage.store, tmp_path / "work", device=CPU)
    training = outcome.manifest.training
    assert training["bestEpoch"] == 1
    assert training["stoppedEarly"] is True
    assert training["steps"] == 3 * training["stepsPerEpoch"]  # best + patience epochs

    evaluations = [
        json.loads(line)
        for line in (tmp_path / "work" / "metrics.jsonl").read_text().splitlines()
        if '"event": "eval"' in line
    ]
    assert [e["improved"] for e in evaluations] == [True, False, False]
    assert evaluations[2]["validationLoss"] > evaluations[0]["validationLoss"]

    # The committed weights are the epoch-1 weights: they reproduce epoch 1's validation loss.
    output = tmp_path / "work" / "output"
    model = load_classifier(output, spec.lineage.labels)
    tokenizer = TextTokenizer(load_tokenizer(output), 32)
    data = read_labelled_file(
        tmp_path / "flipped.jsonl",
        source="v",
        text_field="text",
        label_field="label",
        labels=spec.lineage.labels,
    )
    result = evaluate(
        model,
        encode_set(data, tokenizer),
        batch_size=16,
        pad_token_id=0,
        num_classes=2,
        device=CPU,
    )
    assert result.loss == pytest.approx(evaluations[0]["validationLoss"], abs=1e-4)


def test_child_of_a_trained_parent_compares_both_on_holdout_and_replay(
    lineage: Lineage, tmp_path: Path
) -> None:
    replay = write_jsonl(tmp_path / "replay.jsonl", sentiment_rows(20, seed=9))
    v1 = run_train(
        lineage.spec("v1").training(maxEpochs=2).evaluation(holdoutURI=lineage.holdout_uri).spec(),
        lineage.store,
        tmp_path / "w1",
        device=CPU,
    )
    assert v1.manifest.metrics["holdout"]["parent"] is None
    doc = (
        lineage.spec("v2")
        .parent_version("v1")
        .training(maxEpochs=1)
        .evaluation(holdoutURI=lineage.holdout_uri, replayURIs=[replay])
        .obj()
    )
    doc["parent"].update(uri=v1.uri, manifestDigest=v1.manifest_digest)
    v2 = run_train(parse_spec(doc), lineage.store, tmp_path / "w2", device=CPU)
    metrics = v2.manifest.metrics
    assert metrics["parentEvaluated"] is True
    holdout = metrics["holdout"]
    assert holdout["uri"] == lineage.holdout_uri
    assert holdout["candidate"]["examples"] == holdout["parent"]["examples"] == 40
    assert set(holdout["parent"]) == {"loss", "accuracy", "f1", "examples"}
    assert metrics["replay"][0]["uri"] == replay
    assert metrics["replay"][0]["parent"]["examples"] == 20
    assert [ref.role for ref in v2.manifest.datasets] == [
        "train",
        "validation",
        "holdout",
        "replay",
    ]

    links = record.verify_chain(lineage.store, v2.uri, v2.manifest_digest)
    assert [link.version for link in links] == ["v2", "v1", "v0"]


def test_training_is_deterministic_under_a_seed(lineage: Lineage, tmp_path: Path) -> None:
    spec = lineage.spec().training(maxEpochs=1).spec()
    run_train(spec, lineage.store, tmp_path / "a", device=CPU)
    lineage.store.delete_prefix(spec.output.uri)
    run_train(spec, lineage.store, tmp_path / "b", device=CPU)
    first = load_file(str(tmp_path / "a" / "output" / "model.safetensors"))
    second = load_file(str(tmp_path / "b" / "output" / "model.safetensors"))
    assert first.keys() == second.keys()
    assert all(torch.equal(first[key], second[key]) for key in first)


def test_unknown_label_fails_naming_file_and_row(lineage: Lineage, tmp_path: Path) -> None:
    rows = sentiment_rows(10, seed=1)
    rows[6]["label"] = "neutral"
    bad = write_jsonl(tmp_path / "bad.jsonl", rows)
    spec = lineage.spec().dataset(trainURI=bad).spec()
    with pytest.raises(TrainerError, match=r"bad\.jsonl: row 7: unknown label 'neutral'"):
        run_train(spec, lineage.store, tmp_path / "work", device=CPU)
