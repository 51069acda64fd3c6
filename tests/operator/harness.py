"""The controller against the in-memory cluster, driven by a fake clock: builders in the
Kueue style (`make_lineage("reviews").serving("srv").obj()`), a simulated trainer, and a
driver that runs every reconcile due until the queue is idle."""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable
from typing import Any

from tests.fakeclock import FakeClock
from tests.operator.fakecluster import FakeCluster, FakeStore, applied, deployment
from warmstart import record
from warmstart_operator.config import OperatorConfig
from warmstart_operator.controller import Controller
from warmstart_operator.metrics import Metrics

NS = "team-a"
STORAGE = "s3://bucket/reviews/"
BASE_URI = "s3://bucket/published/base/"
LABELS = ("negative", "positive")
START = 1_800_000_000.0


def manifest(version: str, *, lineage: str = "reviews",
             parent: tuple[str, str, str] | None = None, accuracy: float | None = None,
             parent_accuracy: float | None = None, labels: tuple[str, ...] = LABELS,
             replay: list[dict[str, Any]] | None = None,
             created: str = "2026-01-01T00:00:00+00:00",
             majority: dict[str, Any] | None = None) -> bytes:
    holdout: dict[str, Any] = {}
    if accuracy is not None:
        holdout["candidate"] = {"accuracy": accuracy, "loss": 1 - accuracy, "examples": 40}
    if parent_accuracy is not None:
        holdout["parent"] = {"accuracy": parent_accuracy, "loss": 1 - parent_accuracy,
                             "examples": 40}
    return record.Manifest(
        version=version, lineage=lineage, task="sequence-classification", labels=labels,
        parent=record.ParentRef(*parent) if parent else None,
        files=(record.FileEntry("model.safetensors", "sha256:" + "b" * 64, 10),),
        metrics={"holdout": holdout, "replay": replay or [],
                 **({"majorityClass": majority} if majority is not None else {})},
        training={"epochs": 2, "steps": 10, "trainSeconds": 3.0}, created_at=created,
    ).to_bytes()


class LineageBuilder:
    def __init__(self, name: str) -> None:
        self.body: dict[str, Any] = {
            "apiVersion": "warmstart.dev/v1alpha1", "kind": "ModelLineage",
            "metadata": {"name": name, "namespace": NS},
            "spec": {
                "labels": list(LABELS),
                "storage": {"uri": STORAGE, "secretRef": {"name": "reviews-s3"}},
                "base": {"uri": BASE_URI},
                "evaluation": {"holdoutURI": "s3://bucket/data/holdout.jsonl"},
                "promotion": {"metric": "accuracy", "minImprovement": 0.0, "policy": "Auto"},
            },
        }

    def serving(self, deployment_name: str = "srv", deadline: int = 60) -> LineageBuilder:
        self.body["spec"]["serving"] = {"deploymentRef": {"name": deployment_name},
                                        "container": "server",
                                        "progressDeadlineSeconds": deadline}
        return self

    def pin(self, version: str) -> LineageBuilder:
        self.body["spec"]["pinnedVersion"] = version
        return self

    def policy(self, policy: str) -> LineageBuilder:
        self.body["spec"]["promotion"]["policy"] = policy
        return self

    def min_improvement(self, value: float) -> LineageBuilder:
        self.body["spec"]["promotion"]["minImprovement"] = value
        return self

    def base_digest(self, digest: str) -> LineageBuilder:
        self.body["spec"]["base"]["digest"] = digest
        return self

    def secret(self, name: str) -> LineageBuilder:
        self.body["spec"]["storage"]["secretRef"]["name"] = name
        return self

    def schedule(self, cron: str, policy: str = "Forbid") -> LineageBuilder:
        self.body["spec"]["retraining"] = {
            "schedule": cron, "concurrencyPolicy": policy,
            "template": make_wsj("t").obj()["spec"]}
        return self

    def keep(self, versions: int) -> LineageBuilder:
        self.body["spec"]["retention"] = {"keepVersions": versions}
        return self

    def obj(self) -> dict[str, Any]:
        return copy.deepcopy(self.body)


class WsjBuilder:
    def __init__(self, name: str) -> None:
        self.body: dict[str, Any] = {
            "apiVersion": "warmstart.dev/v1alpha1", "kind": "WarmStartJob",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"lineageRef": {"name": "reviews"}, "parent": {"version": "serving"},
                     "dataset": {"trainURI": "s3://bucket/data/train.jsonl",
                                 "validationURI": "s3://bucket/data/val.jsonl"}},
        }

    def parent(self, version: str) -> WsjBuilder:
        self.body["spec"]["parent"] = {"version": version}
        return self

    def lineage(self, name: str) -> WsjBuilder:
        self.body["spec"]["lineageRef"]["name"] = name
        return self

    def suspend(self, value: bool = True) -> WsjBuilder:
        self.body["spec"]["suspend"] = value
        return self

    def promotion(self, value: str) -> WsjBuilder:
        self.body["spec"]["promotion"] = value
        return self

    def train_uri(self, uri: str) -> WsjBuilder:
        self.body["spec"]["dataset"]["trainURI"] = uri
        return self

    def obj(self) -> dict[str, Any]:
        return copy.deepcopy(self.body)


def make_lineage(name: str = "reviews") -> LineageBuilder:
    return LineageBuilder(name)


def make_wsj(name: str) -> WsjBuilder:
    return WsjBuilder(name)


class Harness:
    def __init__(self, max_active: int = 1, base_head: bool = True, **config: Any) -> None:
        self.clock = FakeClock(START)
        self.kube = FakeCluster(self.clock)
        self.store = FakeStore()
        self.metrics = Metrics()
        self.config = OperatorConfig(max_active_per_lineage=max_active, poll_seconds=5.0,
                                     lineage_grace_seconds=30.0, **config)
        self.controller = Controller(self.kube, self.config, self.metrics, self.kube.jobs_of,
                                     self.kube.claimants,
                                     clock=self.clock, store_factory=lambda _: self.store)
        self.kube.watch(self._route)
        self.kube.put("Secret", {"metadata": {"name": "reviews-s3", "namespace": NS},
                                 "stringData": {"AWS_ACCESS_KEY_ID": "k",
                                                "AWS_SECRET_ACCESS_KEY": "s"}})
        for name in ("train", "val", "holdout"):
            self.store.put(f"s3://bucket/data/{name}.jsonl", b"{}\n")
        raw = manifest("base", labels=LABELS if base_head else ())
        self.store.put(record.manifest_uri(BASE_URI), raw)
        self.base_digest = record.manifest_digest(raw)
        self.reconciles = 0

    def _route(self, kind: str, event_type: str, body: dict[str, Any]) -> None:
        if kind == "WarmStartJob":
            self.controller.on_wsj_event(event_type, body)
        elif kind == "ModelLineage":
            self.controller.on_lineage_event(event_type, body)
        elif kind == "Job":
            self.controller.on_job_event(body, event_type)

    # -- driving -----------------------------------------------------------------------
    def settle(self, limit: int = 2000) -> None:
        """Runs every reconcile due now, and what they enqueue, until none is due."""
        for _ in range(limit):
            key = self.controller.queue.pop_due(self.clock())
            if key is None:
                return
            self.reconciles += 1
            self.controller.process(key)
        raise AssertionError(f"still busy after {limit} reconciles: a hot loop")

    def run_for(self, seconds: float) -> None:
        """Moves the clock forward, running each delayed reconcile at its time."""
        end = self.clock() + seconds
        self.settle()
        while True:
            due = self.controller.queue.next_due()
            if due is None or due > end:
                break
            self.clock.now = max(self.clock.now, due)
            self.settle()
        self.clock.now = end
        self.settle()

    def create(self, body: dict[str, Any]) -> None:
        self.kube.put(body["kind"], body)
        self.settle()

    def add_deployment(self, name: str = "srv", container: str = "server",
                       lineage: str | None = "reviews") -> None:
        self.kube.put("Deployment", deployment(NS, name, container, lineage))
        self.settle()

    def edit_lineage(self, name: str = "reviews", **spec: Any) -> None:
        def change(obj: dict[str, Any]) -> None:
            for key, value in spec.items():
                if value is None:
                    obj["spec"].pop(key, None)
                else:
                    obj["spec"][key] = value

        self.kube.update("ModelLineage", NS, name, change)
        self.settle()

    def edit_wsj(self, name: str, **spec: Any) -> None:
        self.kube.update("WarmStartJob", NS, name, lambda o: o["spec"].update(spec))
        self.settle()

    # -- the world's side: trainer, Job controller, Deployment controller ----------------
    def finish_training(self, wsj: str, accuracy: float | None = 0.9,
                        parent_accuracy: float | None = 0.8, lineage: str = "reviews",
                        replay: list[dict[str, Any]] | None = None,
                        sign: Callable[[str, str, bytes], None] | None = None,
                        majority: dict[str, Any] | None = None) -> str:
        """The trainer's upload (manifest last; `sign(version, prefix, manifest)` writes its
        signature, as a signing trainer does), then the Job controller's Complete."""
        status = self.wsj(wsj)["status"]
        parent = status["parent"]
        version = wsj
        created = dt.datetime.fromtimestamp(self.clock(), dt.UTC).isoformat()
        raw = manifest(version, lineage=lineage, accuracy=accuracy,
                       parent_accuracy=parent_accuracy, replay=replay, created=created,
                       majority=majority,
                       parent=(parent["version"], parent["uri"], parent["manifestDigest"]))
        self.store.put(record.manifest_uri(record.version_uri(STORAGE, version)), raw)
        if sign is not None:
            sign(version, record.version_uri(STORAGE, version), raw)
        self._job_condition(status["jobName"], "Complete", "")
        return record.manifest_digest(raw)

    def fail_training(self, wsj: str, reason: str = "BackoffLimitExceeded") -> None:
        self._job_condition(self.wsj(wsj)["status"]["jobName"], "Failed", reason)

    def _job_condition(self, job: str, kind: str, reason: str) -> None:
        def done(obj: dict[str, Any]) -> None:
            obj["status"] = {"conditions": [{"type": kind, "status": "True",
                                             "reason": reason}]}

        self.kube.update("Job", NS, job, done)
        self.settle()

    def make_available(self, name: str = "srv") -> None:
        """The Deployment controller: the current template's pods are ready."""
        def ready(obj: dict[str, Any]) -> None:
            obj["status"] = {"observedGeneration": obj["metadata"]["generation"],
                             "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1}

        self.kube.update("Deployment", NS, name, ready)
        self.run_for(2.0)  # Deployments are not watched: the rollout is looked at every 2 s

    # -- reading -----------------------------------------------------------------------
    def wsj(self, name: str) -> dict[str, Any]:
        obj = self.kube.get_wsj(NS, name)
        assert obj is not None, name
        return obj

    def phase(self, name: str) -> str | None:
        return (self.wsj(name).get("status") or {}).get("phase")

    def lineage(self, name: str = "reviews") -> dict[str, Any]:
        obj = self.kube.get_lineage(NS, name)
        assert obj is not None
        return obj

    def status(self, name: str = "reviews") -> dict[str, Any]:
        return dict(self.lineage(name).get("status") or {})

    def version(self, name: str) -> dict[str, Any]:
        for v in self.status().get("versions") or []:
            if v["name"] == name:
                return dict(v)
        raise AssertionError(f"no version {name}")

    def condition(self, kind: str, obj: dict[str, Any] | None = None) -> dict[str, Any]:
        obj = obj if obj is not None else self.lineage()
        for c in (obj.get("status") or {}).get("conditions") or []:
            if c["type"] == kind:
                return dict(c)
        raise AssertionError(f"no condition {kind} in {obj.get('status')}")

    def deployed(self, name: str = "srv") -> str | None:
        obj = self.kube.get_deployment(NS, name)
        assert obj is not None
        return applied(obj)


def serving_lineage(deadline: int = 60) -> Harness:
    """A lineage serving its base on an available Deployment."""
    h = Harness()
    h.add_deployment()
    h.create(make_lineage().serving(deadline=deadline).obj())
    assert h.deployed() == "base"
    h.make_available()
    assert h.status()["servingVersion"] == "base"
    return h


def train(h: Harness, name: str, accuracy: float = 0.9, parent_accuracy: float = 0.8) -> None:
    h.create(make_wsj(name).obj())
    assert h.phase(name) == "Training", h.wsj(name).get("status")
    h.finish_training(name, accuracy, parent_accuracy)
