"""Fixtures for operator cluster tests: CRDs installed, an operator process per test
namespace, a tiny real lineage (a small BERT base published to S3 plus labelled data) and
`api`, the test's view of its namespace. What they are made of is in kit.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import LocalCluster
from tests.operator.kit import Api, OperatorProcess, TinyLineage, jsonl
from tests.trainer.support import make_tiny_base, sentiment_rows
from warmstart.storage import S3Settings, Storage

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def crds(cluster: LocalCluster) -> None:
    cluster.kubectl("apply", "--server-side", "-f", str(REPO / "crds"))
    cluster.wait_established("crd/warmstartjobs.warmstart.dev", "crd/modellineages.warmstart.dev")


@pytest.fixture
def operator(cluster: LocalCluster, crds: None, namespace: str,
             tmp_path: Path) -> Iterator[OperatorProcess]:
    op = OperatorProcess(cluster, namespace, tmp_path / "operator.log")
    op.start()
    try:
        yield op
    finally:
        op.stop()


@pytest.fixture
def tiny_lineage(cluster: LocalCluster, s3_bucket: str, tmp_path: Path) -> TinyLineage:
    from warmstart_trainer.publish import publish_base

    store = Storage(S3Settings.from_env(cluster.s3_env()))
    base_dir = make_tiny_base(tmp_path / "base")
    base_uri = f"s3://{s3_bucket}/reviews/base/"
    _, digest = publish_base(store, base_dir, base_uri, lineage="reviews")
    data = {
        "week1-train": jsonl(sentiment_rows(128, seed=1)),
        "week1-val": jsonl(sentiment_rows(24, seed=2)),
        "week2-train": jsonl(sentiment_rows(128, seed=3)),
        "week2-val": jsonl(sentiment_rows(24, seed=4)),
        "corrupt-train": jsonl(sentiment_rows(128, seed=5, flip=True)),
        "corrupt-val": jsonl(sentiment_rows(24, seed=6, flip=True)),
        "holdout": jsonl(sentiment_rows(40, seed=9)),
    }
    uris = {}
    for key, body in data.items():
        uri = f"s3://{s3_bucket}/data/{key}.jsonl"
        store.put_bytes(uri, body)
        uris[key] = uri
    return TinyLineage(s3_bucket, base_uri, digest, uris, store)


@pytest.fixture
def api(cluster: LocalCluster, namespace: str) -> Api:
    return Api(cluster, namespace)
