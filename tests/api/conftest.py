"""Fixtures of the API tests: the CRDs from crds/ installed once per cluster."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import LocalCluster
from warmstart.api import crdgen

CRD_DIR = Path(__file__).resolve().parents[2] / "crds"


@pytest.fixture(scope="session")
def crds(cluster: LocalCluster) -> LocalCluster:
    """The cluster with the committed CRDs applied and established (what users install)."""
    cluster.kubectl(
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager=warmstart-api-tests",
        "-f",
        str(CRD_DIR),
    )
    cluster.wait_established(*(f"crd/{definition.crd_name}" for definition in crdgen.KINDS))
    return cluster


@pytest.fixture(scope="module")
def shared_namespace(crds: LocalCluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """One namespace for a module's refusal tests: a refused object is never stored, so
    they cannot disturb each other, and 70 namespaces would cost minutes."""
    module = request.module.__name__.rsplit(".", 1)[-1].replace("_", "-")
    # Unique per run: a namespace of an earlier run against a reused cluster may still be
    # terminating.
    name = f"{module[:40]}-{uuid.uuid4().hex[:6]}"
    crds.kubectl("create", "namespace", name)
    try:
        yield name
    finally:
        crds.kubectl("delete", "namespace", name, "--wait=false", check=False)
