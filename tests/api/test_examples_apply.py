"""Every file in examples/ (subfolders included) applies as is and reads back as written
plus the defaults. The serving Deployment is applied as a server-side dry run: a real one
would start model-server pods with nothing to serve (the demo applies it for real)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import LocalCluster
from warmstart.api import ModelLineage, WarmStartJob

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
EXAMPLE_FILES = sorted(EXAMPLES.rglob("*.yaml"))
DRY_RUN_KINDS = {"Deployment"}
MODELS: dict[str, type[WarmStartJob] | type[ModelLineage]] = {
    "WarmStartJob": WarmStartJob,
    "ModelLineage": ModelLineage,
}


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def read_back(cluster: LocalCluster, namespace: str, doc: dict[str, Any]) -> dict[str, Any]:
    got = cluster.kubectl("get", doc["kind"], doc["metadata"]["name"], "-n", namespace, "-o",
                          "json")
    result: dict[str, Any] = json.loads(got.stdout)
    return result


def expected_spec(doc: dict[str, Any]) -> dict[str, Any]:
    """What the file says, plus every default, computed from the models: the API server's
    defaulting must agree with the models' defaults field by field."""
    return MODELS[doc["kind"]].model_validate(doc).spec.to_api()


def assert_round_trip(cluster: LocalCluster, namespace: str, doc: dict[str, Any]) -> None:
    stored = read_back(cluster, namespace, doc)
    if doc["kind"] == "Secret":
        decoded = {k: base64.b64decode(v).decode() for k, v in stored["data"].items()}
        assert decoded == doc["stringData"]
        return
    assert stored["spec"] == expected_spec(doc)
    assert "status" not in stored


def name(path: Path) -> str:
    return str(path.relative_to(EXAMPLES))


def dry_run_only(path: Path) -> bool:
    return any(doc["kind"] in DRY_RUN_KINDS for doc in documents(path))


def test_examples_exist() -> None:
    assert [name(p) for p in EXAMPLE_FILES] == [
        "coldstart-job.yaml",
        "lineage.yaml",
        "s3-secret.yaml",
        "serving/deployment.yaml",
        "warmstart-job.yaml",
        "week2/coldstart-job.yaml",
        "week2/warmstart-job.yaml",
        "week3/mislabelled-job.yaml",
    ]


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=[name(p) for p in EXAMPLE_FILES])
def test_example_applies_and_round_trips(
    crds: LocalCluster, namespace: str, path: Path
) -> None:
    if dry_run_only(path):
        result = crds.kubectl("apply", "--dry-run=server", "-n", namespace, "-f", str(path))
        assert "(server dry run)" in result.stdout, result.stdout
        assert "Warning" not in result.stderr, result.stderr
        return
    result = crds.kubectl("apply", "-n", namespace, "-f", str(path))
    assert "Warning" not in result.stderr, result.stderr  # e.g. a pruned unknown field
    for doc in documents(path):
        assert_round_trip(crds, namespace, doc)


def test_all_examples_apply_together_server_side(crds: LocalCluster, namespace: str) -> None:
    # GitOps tools apply the whole folder, increasingly with server-side apply; list types
    # (set, map) must merge cleanly, and a second apply must change nothing.
    files = [p for p in EXAMPLE_FILES if not dry_run_only(p)]
    flags = ["apply", "--server-side", "--field-manager=gitops", "-n", namespace]
    for path in files:
        flags += ["-f", str(path)]
    crds.kubectl(*flags)
    before = {p: [read_back(crds, namespace, d) for d in documents(p)] for p in files}
    crds.kubectl(*flags)
    for path in files:
        for doc, old in zip(documents(path), before[path], strict=True):
            assert_round_trip(crds, namespace, doc)
            new = read_back(crds, namespace, doc)
            assert new["metadata"]["resourceVersion"] == old["metadata"]["resourceVersion"]
