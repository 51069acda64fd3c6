"""Test helpers: a tiny BERT checkpoint, a learnable toy dataset, specs built step by step."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import random
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from warmstart import record
from warmstart.storage import Storage
from warmstart.trainspec import TrainSpec, parse_spec

POSITIVE = ["good", "great", "excellent", "wonderful", "superb", "delightful", "fun", "moving"]
NEGATIVE = ["bad", "awful", "terrible", "boring", "dreadful", "poor", "dull", "clumsy"]
FILLER = ["the", "movie", "film", "was", "plot", "acting", "a", "story", "really", "quite", "and"]
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
LABELS = ("negative", "positive")


def make_tiny_base(directory: Path, seed: int = 0, *, labels: tuple[str, ...] = ()) -> Path:
    """A small BERT checkpoint (hidden 32, 2 layers) in Hugging Face layout.

    Without ``labels`` it is a bare encoder, like the sentence-transformers MiniLM base; with
    labels it carries a (random) classification head for them.
    """
    import torch
    from transformers import (
        BertConfig,
        BertForSequenceClassification,
        BertModel,
        BertTokenizer,
    )

    directory.mkdir(parents=True, exist_ok=True)
    words = SPECIALS + sorted(set(POSITIVE + NEGATIVE + FILLER))
    tokenizer = BertTokenizer(vocab={word: index for index, word in enumerate(words)})
    config = BertConfig(
        vocab_size=len(words),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        pad_token_id=0,
    )
    torch.manual_seed(seed)
    if labels:
        config.num_labels = len(labels)
        config.id2label = dict(enumerate(labels))
        config.label2id = {name: index for index, name in enumerate(labels)}
        model: Any = BertForSequenceClassification(config)
    else:
        model = BertModel(config)
    model.save_pretrained(str(directory))
    tokenizer.save_pretrained(str(directory))
    return directory


def sentiment_rows(count: int, seed: int, *, flip: bool = False) -> list[dict[str, str]]:
    """Short reviews whose label is decided by one sentiment word among filler."""
    rng = random.Random(seed)
    rows = []
    for index in range(count):
        positive = index % 2 == 0
        word = rng.choice(POSITIVE if positive else NEGATIVE)
        words = [rng.choice(FILLER) for _ in range(rng.randint(2, 8))]
        words.insert(rng.randint(0, len(words)), word)
        label = LABELS[int(positive) ^ int(flip)]
        rows.append({"text": " ".join(words), "label": label})
    return rows


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path.as_uri()


def publish_dir(store: Storage, directory: Path, uri: str, *, labels: tuple[str, ...] = ()) -> str:
    from warmstart_trainer.publish import publish_base

    _, digest = publish_base(store, directory, uri, lineage="reviews", labels=labels)
    return digest


class SpecBuilder:
    """``SpecBuilder(parent_uri, digest, train_uri, out).cold().epochs(2).obj()``."""

    def __init__(self, parent_uri: str, digest: str, train_uri: str, output_uri: str) -> None:
        self.doc: dict[str, Any] = {
            "lineage": {"name": "reviews", "labels": list(LABELS)},
            "version": output_uri.rstrip("/").rsplit("/", 1)[-1],
            "parent": {"uri": parent_uri, "manifestDigest": digest, "version": "v0"},
            "dataset": {"trainURI": train_uri, "validationFraction": 0.25},
            "training": {
                "maxEpochs": 3,
                "batchSize": 8,
                "learningRate": 1e-3,
                "maxSeqLength": 32,
                "checkpointEverySteps": 0,
                "seed": 7,
            },
            "output": {"uri": output_uri},
        }

    def cold(self) -> SpecBuilder:
        self.doc["coldStart"] = True
        return self

    def parent_version(self, version: str) -> SpecBuilder:
        self.doc["parent"]["version"] = version
        return self

    def training(self, **values: Any) -> SpecBuilder:
        self.doc["training"].update(values)
        return self

    def dataset(self, **values: Any) -> SpecBuilder:
        self.doc["dataset"].update(values)
        return self

    def evaluation(self, **values: Any) -> SpecBuilder:
        self.doc.setdefault("evaluation", {}).update(values)
        return self

    def obj(self) -> dict[str, Any]:
        copy: dict[str, Any] = json.loads(json.dumps(self.doc))
        return copy

    def spec(self) -> TrainSpec:
        return parse_spec(self.obj())

    def write(self, path: Path) -> Path:
        path.write_text(json.dumps(self.doc), encoding="utf-8")
        return path


def file_prefix(path: Path) -> str:
    return record.ensure_prefix(path.as_uri())


def run_cli(argv: list[str], env: Mapping[str, str]) -> tuple[int, str]:
    """``python -m warmstart_trainer <argv>`` inside this process, with ``env`` added to the
    environment: the exit code ``__main__`` would exit with, and what went to stderr.

    For tests of what the trainer does rather than of the process around it: starting one
    costs seconds of torch imports. The environment, the root logger and the temporary
    directory the command points elsewhere are restored afterwards.
    """
    from warmstart_trainer.cli import main

    saved_env, saved_tempdir = dict(os.environ), tempfile.tempdir
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    stderr = io.StringIO()
    os.environ.update(env)
    try:
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            code = main(argv)
    finally:
        os.environ.clear()
        os.environ.update(saved_env)
        tempfile.tempdir = saved_tempdir
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
    return code, stderr.getvalue()
