"""Kueue-style builders of ModelLineage objects for the CLI tests.

`make_lineage("reviews").version("base").version("v1", parent="base", accuracy=0.8)
.serving("v1").obj()` gives the dict the API server would return; `.view()` gives the CLI's
view of it, so the pure renderers are tested on exactly what the cluster tests create.
"""

from __future__ import annotations

import copy
from typing import Any, Self

from warmstart.api.constants import API_VERSION, MODELLINEAGE_KIND
from warmstart.cli.view import LineageView, from_object

BUCKET = "warmstart-cli-test"
NAMESPACE = "team-a"
SECRET = "lineage-s3"


def digest_of(char: str) -> str:
    return "sha256:" + char * 64


class LineageBuilder:
    def __init__(self, name: str, storage_uri: str) -> None:
        self._storage_uri = storage_uri
        self._obj: dict[str, Any] = {
            "apiVersion": API_VERSION,
            "kind": MODELLINEAGE_KIND,
            "metadata": {"name": name},
            "spec": {
                "labels": ["negative", "positive"],
                "storage": {"uri": self._storage_uri, "secretRef": {"name": SECRET}},
                "base": {"uri": f"{self._storage_uri}base/"},
                "evaluation": {"holdoutURI": f"s3://{BUCKET}/data/holdout.jsonl"},
                "promotion": {"metric": "accuracy"},
            },
            "status": {"versions": []},
        }

    @property
    def storage_uri(self) -> str:
        return self._storage_uri

    def metric(self, metric: str) -> Self:
        self._obj["spec"]["promotion"]["metric"] = metric
        return self

    def base_digest(self, digest: str) -> Self:
        self._obj["spec"]["base"]["digest"] = digest
        return self

    def secret(self, name: str) -> Self:
        self._obj["spec"]["storage"]["secretRef"]["name"] = name
        return self

    def version(
        self,
        name: str,
        parent: str | None = None,
        *,
        phase: str = "Promoted",
        digest: str | None = None,
        reason: str | None = None,
        compared_with: str | None = None,
        **metrics: float,
    ) -> Self:
        entry: dict[str, Any] = {
            "name": name,
            "uri": f"{self._storage_uri}{name}/",
            "phase": phase,
            "manifestDigest": digest or digest_of("0"),
        }
        if parent is not None:
            entry["parent"] = parent
        if metrics:
            entry["metrics"] = metrics
        if reason is not None:
            entry["reason"] = reason
        if compared_with is not None:
            entry["comparedWith"] = compared_with
        status = self._obj["status"]
        status["versions"].append(entry)
        status["latestVersion"] = name
        return self

    def serving(self, name: str, previous: str | None = None) -> Self:
        self._obj["status"]["servingVersion"] = name
        if previous is not None:
            self._obj["status"]["previousVersion"] = previous
        return self

    def desired(self, name: str) -> Self:
        self._obj["status"]["desiredVersion"] = name
        return self

    def pinned(self, name: str) -> Self:
        self._obj["spec"]["pinnedVersion"] = name
        return self

    def obj(self) -> dict[str, Any]:
        return copy.deepcopy(self._obj)

    def spec_object(self) -> dict[str, Any]:
        """The object to create: the API server ignores status on create."""
        obj = self.obj()
        del obj["status"]
        return obj

    def status(self) -> dict[str, Any]:
        return copy.deepcopy(self._obj["status"])

    def view(self, namespace: str = NAMESPACE) -> LineageView:
        return from_object(self.obj(), namespace)


def make_lineage(name: str = "reviews", storage_uri: str | None = None) -> LineageBuilder:
    """A lineage whose versions live under ``storage_uri`` (default: a test bucket)."""
    return LineageBuilder(name, storage_uri or f"s3://{BUCKET}/lineages/{name}/")


def sample_lineage() -> LineageBuilder:
    """base -> v1 -> v2 (serving) with a rejected v3 and a rolled-back v4 beside v2."""
    return (
        make_lineage()
        .version("base", accuracy=0.712)
        .version("v1", "base", accuracy=0.801)
        .version("v2", "v1", accuracy=0.843)
        .version("v3", "v1", phase="Rejected", reason="InsufficientImprovement", accuracy=0.79)
        .version("v4", "v2", phase="RolledBack", reason="RolloutTimedOut", accuracy=0.861)
        .serving("v2", previous="v1")
        .pinned("v2")
    )
