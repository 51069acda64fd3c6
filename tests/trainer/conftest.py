"""Fixtures for the trainer tests: storage on the local filesystem (file:// URIs), a tiny
published base version and a toy sentiment dataset. Tests that need the real S3 server
request the project's ``s3_*`` fixtures instead."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.trainer.support import (
    SpecBuilder,
    file_prefix,
    make_tiny_base,
    publish_dir,
    sentiment_rows,
    write_jsonl,
)
from warmstart.storage import Storage


@dataclass
class Lineage:
    root: Path
    store: Storage
    storage_uri: str
    base_uri: str
    base_digest: str
    base_dir: Path
    train_uri: str
    holdout_uri: str

    def spec(self, version: str = "v1") -> SpecBuilder:
        return SpecBuilder(
            self.base_uri, self.base_digest, self.train_uri, f"{self.storage_uri}{version}/"
        )


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread() -> None:
    # On a small, busy machine torch's OpenMP workers spin against each other: tiny models
    # ran ten times slower with two threads than with one.
    import torch

    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"  # for trainer subprocesses


@pytest.fixture(scope="session")
def tiny_base_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_base(tmp_path_factory.mktemp("tiny-base") / "checkpoint")


@pytest.fixture
def lineage(tmp_path: Path, tiny_base_dir: Path) -> Lineage:
    store = Storage()
    storage_uri = file_prefix(tmp_path / "bucket" / "reviews")
    base_uri = f"{storage_uri}v0/"
    digest = publish_dir(store, tiny_base_dir, base_uri)
    train_uri = write_jsonl(tmp_path / "data" / "train.jsonl", sentiment_rows(96, seed=1))
    holdout_uri = write_jsonl(tmp_path / "data" / "holdout.jsonl", sentiment_rows(40, seed=2))
    return Lineage(
        root=tmp_path,
        store=store,
        storage_uri=storage_uri,
        base_uri=base_uri,
        base_digest=digest,
        base_dir=tiny_base_dir,
        train_uri=train_uri,
        holdout_uri=holdout_uri,
    )
