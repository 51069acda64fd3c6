"""Kueue-style builders of WarmStartJob and ModelLineage manifests for tests.

They build plain dicts, not pydantic models, so a test can also build the malformed objects
the API server must refuse: `make_wsj("a").epochs(0).obj()`.
"""

from __future__ import annotations

import copy
from typing import Any, Self

import yaml

from warmstart.api.constants import API_VERSION, MODELLINEAGE_KIND, WARMSTARTJOB_KIND

BUCKET = "s3://warmstart-test"
LINEAGE = "reviews-classifier"
DIGEST = "sha256:" + "0123456789abcdef" * 4


class _Builder:
    def __init__(self, kind: str, name: str, spec: dict[str, Any]) -> None:
        self._obj: dict[str, Any] = {
            "apiVersion": API_VERSION,
            "kind": kind,
            "metadata": {"name": name},
            "spec": spec,
        }

    def set(self, path: str, value: Any) -> Self:
        """Set a dotted path below the object, creating maps on the way: "spec.a.b"."""
        *parents, leaf = path.split(".")
        node = self._obj
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
        return self

    def unset(self, path: str) -> Self:
        *parents, leaf = path.split(".")
        node = self._obj
        for key in parents:
            node = node[key]
        node.pop(leaf, None)
        return self

    def obj(self) -> dict[str, Any]:
        return copy.deepcopy(self._obj)

    def yaml(self) -> str:
        return yaml.safe_dump(self._obj, sort_keys=False)


class WarmStartJobBuilder(_Builder):
    def lineage(self, name: str) -> Self:
        return self.set("spec.lineageRef", {"name": name})

    def parent(self, version: str) -> Self:
        return self.set("spec.parent", {"version": version})

    def parent_uri(self, uri: str, digest: str | None = DIGEST) -> Self:
        parent: dict[str, Any] = {"uri": uri}
        if digest is not None:
            parent["digest"] = digest
        return self.set("spec.parent", parent)

    def cold_start(self, cold: bool = True) -> Self:
        return self.set("spec.coldStart", cold)

    def train_uri(self, uri: str) -> Self:
        return self.set("spec.dataset.trainURI", uri)

    def validation_uri(self, uri: str) -> Self:
        return self.set("spec.dataset.validationURI", uri)

    def validation_fraction(self, fraction: float) -> Self:
        return self.unset("spec.dataset.validationURI").set(
            "spec.dataset.validationFraction", fraction
        )

    def epochs(self, count: int) -> Self:
        return self.set("spec.training.maxEpochs", count)

    def learning_rate(self, rate: float) -> Self:
        return self.set("spec.training.learningRate", rate)

    def batch_size(self, size: int) -> Self:
        return self.set("spec.training.batchSize", size)

    def promotion(self, promotion: str) -> Self:
        return self.set("spec.promotion", promotion)

    def suspend(self, suspend: bool = True) -> Self:
        return self.set("spec.suspend", suspend)


def make_wsj(name: str) -> WarmStartJobBuilder:
    """A valid minimal WarmStartJob of lineage reviews-classifier."""
    return WarmStartJobBuilder(
        WARMSTARTJOB_KIND,
        name,
        {
            "lineageRef": {"name": LINEAGE},
            "dataset": {
                "trainURI": f"{BUCKET}/data/week1/train.jsonl",
                "validationURI": f"{BUCKET}/data/week1/validation.jsonl",
            },
        },
    )


class ModelLineageBuilder(_Builder):
    def labels(self, *labels: str) -> Self:
        return self.set("spec.labels", list(labels))

    def storage_uri(self, uri: str) -> Self:
        return self.set("spec.storage.uri", uri)

    def secret(self, name: str) -> Self:
        return self.set("spec.storage.secretRef", {"name": name})

    def base(self, uri: str, digest: str | None = None) -> Self:
        base: dict[str, Any] = {"uri": uri}
        if digest is not None:
            base["digest"] = digest
        return self.set("spec.base", base)

    def replay(self, *uris: str) -> Self:
        return self.set("spec.evaluation.replayURIs", list(uris))

    def metric(self, metric: str, min_value: float | None = None) -> Self:
        self.set("spec.promotion.metric", metric)
        return self if min_value is None else self.set("spec.promotion.minValue", min_value)

    def policy(self, policy: str) -> Self:
        return self.set("spec.promotion.policy", policy)

    def serving(self, deployment: str, container: str = "server") -> Self:
        return self.set(
            "spec.serving", {"deploymentRef": {"name": deployment}, "container": container}
        )

    def schedule(self, cron: str) -> Self:
        return self.set(
            "spec.retraining",
            {
                "schedule": cron,
                "template": {
                    "dataset": {
                        "trainURI": f"{BUCKET}/data/latest/train.jsonl",
                        "validationFraction": 0.1,
                    }
                },
            },
        )

    def pinned(self, version: str) -> Self:
        return self.set("spec.pinnedVersion", version)


def make_lineage(name: str) -> ModelLineageBuilder:
    """A valid minimal ModelLineage."""
    return ModelLineageBuilder(
        MODELLINEAGE_KIND,
        name,
        {
            "labels": ["negative", "positive"],
            "storage": {"uri": f"{BUCKET}/lineages/{name}/", "secretRef": {"name": "reviews-s3"}},
            "base": {"uri": f"{BUCKET}/base/minilm/"},
            "evaluation": {"holdoutURI": f"{BUCKET}/data/holdout.jsonl"},
        },
    )
