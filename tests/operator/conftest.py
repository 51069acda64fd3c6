"""Fixtures for operator tests: CRDs installed, an operator process per test namespace, and
a tiny real lineage (a small BERT base published to S3 plus labelled data)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.conftest import LocalCluster, wait_for
from tests.trainer.support import LABELS, make_tiny_base, sentiment_rows
from warmstart.storage import S3Settings, Storage
from warmstart_localcluster.ports import free_ports
from warmstart_localcluster.processes import MARKER_ENV

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def crds(cluster: LocalCluster) -> None:
    cluster.kubectl("apply", "--server-side", "-f", str(REPO / "crds"))
    cluster.wait_established("crd/warmstartjobs.warmstart.dev", "crd/modellineages.warmstart.dev")


@dataclass
class OperatorProcess:
    """The operator as a local process watching one namespace; restartable and killable."""

    cluster: LocalCluster
    namespace: str
    log_path: Path
    metrics_port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    extra_env: dict[str, str] = field(default_factory=dict)

    def start(self) -> None:
        self.metrics_port = free_ports(1)[0]
        env = {
            **os.environ,
            "KUBECONFIG": str(self.cluster.kubeconfig),
            "WARMSTART_METRICS_PORT": str(self.metrics_port),
            "WARMSTART_METRICS_ADDRESS": "127.0.0.1",
            "WARMSTART_POLL_SECONDS": "1",
            "WARMSTART_LINEAGE_GRACE_SECONDS": "3",
            "WARMSTART_TRAINER_COMMAND": f"{sys.executable} -m warmstart_trainer",
            MARKER_ENV: str(self.cluster.state_dir),
            **self.extra_env,
        }
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "warmstart_operator", "-n", self.namespace],
                stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
            )
        wait_for("operator metrics endpoint", self.metrics_up, timeout=60)

    def metrics_up(self) -> bool:
        try:
            self.metrics()
            return True
        except OSError:
            assert self.proc is not None
            if self.proc.poll() is not None and self.extra_env.get("WARMSTART_FAILPOINTS"):
                # It reached an armed failpoint before serving metrics: the crash test
                # checks the exit code itself.
                return True
            assert self.proc.poll() is None, self.log()
            return False

    def metrics(self) -> str:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as resp:
            return str(resp.read().decode())

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]


@pytest.fixture
def operator(cluster: LocalCluster, crds: None, namespace: str,
             tmp_path: Path) -> Iterator[OperatorProcess]:
    op = OperatorProcess(cluster, namespace, tmp_path / "operator.log")
    op.start()
    try:
        yield op
    finally:
        op.stop()


@dataclass
class TinyLineage:
    """A bucket holding a tiny published base and labelled data windows."""

    bucket: str
    base_uri: str
    base_digest: str
    data: dict[str, str]
    store: Storage

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"


def _jsonl(rows: list[dict[str, str]]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


@pytest.fixture
def tiny_lineage(cluster: LocalCluster, s3_bucket: str, tmp_path: Path) -> TinyLineage:
    from warmstart_trainer.publish import publish_base

    store = Storage(S3Settings.from_env(cluster.s3_env()))
    base_dir = make_tiny_base(tmp_path / "base")
    base_uri = f"s3://{s3_bucket}/reviews/base/"
    _, digest = publish_base(store, base_dir, base_uri, lineage="reviews")
    data = {
        "week1-train": _jsonl(sentiment_rows(128, seed=1)),
        "week1-val": _jsonl(sentiment_rows(24, seed=2)),
        "week2-train": _jsonl(sentiment_rows(128, seed=3)),
        "week2-val": _jsonl(sentiment_rows(24, seed=4)),
        "corrupt-train": _jsonl(sentiment_rows(128, seed=5, flip=True)),
        "corrupt-val": _jsonl(sentiment_rows(24, seed=6, flip=True)),
        "holdout": _jsonl(sentiment_rows(40, seed=9)),
    }
    uris = {}
    for key, body in data.items():
        uri = f"s3://{s3_bucket}/data/{key}.jsonl"
        store.put_bytes(uri, body)
        uris[key] = uri
    return TinyLineage(s3_bucket, base_uri, digest, uris, store)


def s3_secret(cluster: LocalCluster, namespace: str, name: str = "reviews-s3") -> None:
    core = client.CoreV1Api(cluster.api_client())
    env = cluster.s3_env()
    core.create_namespaced_secret(namespace, {"metadata": {"name": name}, "stringData": env})


def lineage_manifest(name: str, lineage: TinyLineage, serving: str | None = None,
                     **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "warmstart.dev/v1alpha1",
        "kind": "ModelLineage",
        "metadata": {"name": name},
        "spec": {
            "labels": list(LABELS),
            "storage": {"uri": lineage.uri("reviews/"), "secretRef": {"name": "reviews-s3"}},
            "base": {"uri": lineage.base_uri, "digest": lineage.base_digest},
            "evaluation": {"holdoutURI": lineage.data["holdout"]},
            "promotion": {"metric": "accuracy", "minImprovement": 0.0, "policy": "Auto"},
            **spec,
        },
    }
    if serving:
        body["spec"]["serving"] = {"deploymentRef": {"name": serving}, "container": "server",
                                   "progressDeadlineSeconds": 60}
    return body


def wsj_manifest(name: str, lineage: TinyLineage, window: str, parent: str = "serving",
                 **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "warmstart.dev/v1alpha1",
        "kind": "WarmStartJob",
        "metadata": {"name": name},
        "spec": {
            "lineageRef": {"name": "reviews"},
            "parent": {"version": parent},
            "dataset": {"trainURI": lineage.data[f"{window}-train"],
                        "validationURI": lineage.data[f"{window}-val"]},
            "training": {"maxEpochs": 8, "batchSize": 16, "learningRate": 0.003,
                         "maxSeqLength": 32, "seed": 7, "checkpointEverySteps": 1000},
            "backoffLimit": 0,
            **spec,
        },
    }


def server_deployment(name: str, lineage: str = "reviews") -> dict[str, Any]:
    """The user's serving Deployment: the model server, told which version to load by the
    two env vars the operator owns; the label hands it to `lineage` (the opt-in)."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"warmstart.dev/lineage": lineage}},
        "spec": {
            "replicas": 1,
            "progressDeadlineSeconds": 600,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{
                    "name": "server",
                    "image": "warmstart-trainer",
                    "command": ["python", "-m", "warmstart_trainer", "serve",
                                "--uri", "$(WARMSTART_MODEL_URI)",
                                "--digest", "$(WARMSTART_MODEL_DIGEST)",
                                "--port", "8080", "--model-name", "reviews"],
                    "envFrom": [{"secretRef": {"name": "reviews-s3"}}],
                    "env": [
                        {"name": "POD_IP",
                         "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                        {"name": "WARMSTART_WORKDIR", "value": "/scratch"},
                    ],
                    "ports": [{"name": "http", "containerPort": 8080}],
                    "readinessProbe": {"httpGet": {"path": "/v2/health/ready", "port": "http"},
                                       "periodSeconds": 1, "failureThreshold": 1},
                    "volumeMounts": [{"name": "work", "mountPath": "/scratch"}],
                    "securityContext": {"readOnlyRootFilesystem": True},
                }],
                    "volumes": [{"name": "work", "emptyDir": {}}]},
            },
        },
    }
