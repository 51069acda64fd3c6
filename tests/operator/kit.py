"""What the operator's cluster tests share: the operator as a process, the tiny lineage's
bucket, the manifests they apply, and `Api`, the test's view of one namespace. Fixtures
that build these are in conftest.py."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client

from tests.conftest import TRAINER_IMAGE, LocalCluster, wait_for
from tests.trainer.support import LABELS
from warmstart.storage import Storage
from warmstart_localcluster.ports import free_ports
from warmstart_localcluster.processes import MARKER_ENV

GROUP, VERSION = "warmstart.dev", "v1alpha1"


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
            # Its trainer Jobs run the trainer image built here, as the chart's operator's do.
            "WARMSTART_TRAINER_IMAGE": TRAINER_IMAGE,
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


def jsonl(rows: list[dict[str, str]]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


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


def server_deployment(name: str, lineage: str = "reviews",
                      image: str = TRAINER_IMAGE) -> dict[str, Any]:
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
                    "image": image,
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


class Api:
    """The test's view of one namespace: the custom objects and the built-in APIs."""

    def __init__(self, cluster: LocalCluster, namespace: str) -> None:
        self.cluster = cluster
        self.api = cluster.api_client()
        self.ns = namespace
        self.custom = client.CustomObjectsApi(self.api)
        self.apps = client.AppsV1Api(self.api)
        self.core = client.CoreV1Api(self.api)
        self.batch = client.BatchV1Api(self.api)

    def create(self, plural: str, body: dict[str, Any]) -> None:
        self.custom.create_namespaced_custom_object(GROUP, VERSION, self.ns, plural, body)

    def get(self, plural: str, name: str) -> dict[str, Any]:
        obj: dict[str, Any] = self.custom.get_namespaced_custom_object(
            GROUP, VERSION, self.ns, plural, name)
        return obj

    def patch_lineage(self, spec: dict[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object(GROUP, VERSION, self.ns, "modellineages",
                                                   "reviews", {"spec": spec})

    def s3_secret(self, name: str = "reviews-s3") -> None:
        s3_secret(self.cluster, self.ns, name)

    def condition(self, plural: str, name: str, kind: str) -> dict[str, Any]:
        """The condition of that type on the object ({} when it has none)."""
        status = self.get(plural, name).get("status") or {}
        return dict(next((c for c in status.get("conditions") or [] if c["type"] == kind), {}))

    def degraded(self, lineage: str = "reviews", reason: str | None = None,
                 timeout: float = 90) -> dict[str, Any]:
        """Waits for the lineage's Degraded condition to be True (with that reason)."""
        def found() -> dict[str, Any] | None:
            c = self.condition("modellineages", lineage, "Degraded")
            return c if c.get("status") == "True" and reason in (None, c["reason"]) else None

        return dict(wait_for(f"{lineage} Degraded ({reason or 'any reason'})", found,
                             timeout=timeout))

    def failed_condition(self, name: str) -> dict[str, Any]:
        """Waits for the WarmStartJob to end Failed; its Failed condition."""
        assert self.finished(name) == "Failed", self.get("warmstartjobs", name).get("status")
        return self.condition("warmstartjobs", name, "Failed")

    def lineage_status(self) -> dict[str, Any]:
        return dict(self.get("modellineages", "reviews").get("status") or {})

    def wsj_phase(self, name: str) -> str | None:
        return (self.get("warmstartjobs", name).get("status") or {}).get("phase")

    def finished(self, name: str) -> str:
        def done() -> str | None:
            phase = self.wsj_phase(name)
            return phase if phase in ("Succeeded", "Rejected", "Failed") else None

        phase = str(wait_for(f"WarmStartJob {name} to finish", done, timeout=300))
        if phase == "Failed":
            print(json.dumps(self.get("warmstartjobs", name).get("status"), indent=1))
        return phase

    def version(self, name: str) -> dict[str, Any]:
        for v in self.lineage_status().get("versions") or []:
            if v["name"] == name:
                return dict(v)
        raise AssertionError(f"version {name} not in {self.lineage_status()}")

    def serving(self, version: str, timeout: float = 180) -> None:
        wait_for(f"lineage to serve {version}",
                 lambda: self.lineage_status().get("servingVersion") == version, timeout=timeout)

    def deployment_version(self) -> str | None:
        dep = self.apps.read_namespaced_deployment("reviews-server", self.ns)
        return (dep.spec.template.metadata.annotations or {}).get("warmstart.dev/model-version")

    def infer(self) -> dict[str, Any]:
        pods = [p for p in self.core.list_namespaced_pod(
            self.ns, label_selector="app=reviews-server").items
            if p.status.phase == "Running" and not p.metadata.deletion_timestamp
            and any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])]
        assert pods, "no ready server pod"
        pod = pods[0]
        env = {e.name: e.value for e in pod.spec.containers[0].env or []}
        body = json.dumps({"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES",
                                       "data": ["a truly wonderful film"]}]}).encode()
        req = urllib.request.Request(
            f"http://{pod.status.pod_ip}:8080/v2/models/reviews/infer", data=body,
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            answer: dict[str, Any] = json.loads(resp.read())
        answer["_model_uri"] = env.get("WARMSTART_MODEL_URI")
        return answer


def serve_reviews(api: Api, tiny_lineage: TinyLineage, **spec: Any) -> None:
    """Secret, serving Deployment and lineage `reviews`, once its base is registered."""
    api.s3_secret()
    api.apps.create_namespaced_deployment(api.ns, server_deployment(
        "reviews-server", image=TRAINER_IMAGE))
    api.create("modellineages", lineage_manifest("reviews", tiny_lineage,
                                                 serving="reviews-server", **spec))
    # The base (a bare encoder: nothing to serve yet) is registered as version 0.
    wait_for("base registered", lambda: api.lineage_status().get("versions"), timeout=90)
    assert api.version("base")["manifestDigest"] == tiny_lineage.base_digest


def served_lineage(cluster: LocalCluster, namespace: str, tiny_lineage: TinyLineage) -> Api:
    """`serve_reviews` in a namespace of the caller's (the chart tests' operator)."""
    api = Api(cluster, namespace)
    serve_reviews(api, tiny_lineage)
    return api
