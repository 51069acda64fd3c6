"""Every file in examples/ applies as is and reads back as written plus the defaults."""

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
EXAMPLE_FILES = sorted(EXAMPLES.glob("*.yaml"))
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


def test_examples_exist() -> None:
    assert [p.name for p in EXAMPLE_FILES] == [
        "coldstart-job.yaml",
        "lineage.yaml",
        "s3-secret.yaml",
        "warmstart-job.yaml",
    ]


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=[p.name for p in EXAMPLE_FILES])
def test_example_applies_and_round_trips(
    crds: LocalCluster, namespace: str, path: Path
) -> None:
    result = crds.kubectl("apply", "-n", namespace, "-f", str(path))
    assert "Warning" not in result.stderr, result.stderr  # e.g. a pruned unknown field
    for doc in documents(path):
        assert_round_trip(crds, namespace, doc)


def test_all_examples_apply_together_server_side(crds: LocalCluster, namespace: str) -> None:
    # GitOps tools apply the whole folder, increasingly with server-side apply; list types
    # (set, map) must merge cleanly, and a second apply must change nothing.
    flags = ("apply", "--server-side", "--field-manager=gitops", "-n", namespace, "-f")
    crds.kubectl(*flags, str(EXAMPLES))
    before = {p.name: [read_back(crds, namespace, d) for d in documents(p)] for p in EXAMPLE_FILES}
    crds.kubectl(*flags, str(EXAMPLES))
    for path in EXAMPLE_FILES:
        for doc, old in zip(documents(path), before[path.name], strict=True):
            assert_round_trip(crds, namespace, doc)
            new = read_back(crds, namespace, doc)
            assert new["metadata"]["resourceVersion"] == old["metadata"]["resourceVersion"]
