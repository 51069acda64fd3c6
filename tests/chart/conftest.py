"""Helpers for the chart's tests: the project-built helm, and `helm template` as parsed YAML."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

# The operator's fixtures, shared rather than copied (a conftest only sees its own folder's).
from tests.operator.conftest import crds, tiny_lineage  # noqa: F401
from warmstart_localcluster import binaries

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "warmstart"
# The local control plane's version. The project's helm is built from source without the
# version stamp that tells it which Kubernetes it targets, so `helm template` would assume
# 1.20 and refuse the chart's kubeVersion.
KUBE_VERSION = "1.34.0"

Manifest = dict[str, Any]


@dataclass(frozen=True)
class Helm:
    path: str

    def run(self, *args: str, check: bool = True,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([self.path, *args], capture_output=True, text=True,
                                timeout=timeout, check=False)
        if check and result.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} failed ({result.returncode}):\n"
                                 f"{result.stdout}\n{result.stderr}")
        return result

    def template_text(self, *set_args: str, namespace: str = "ops",
                      release: str = "ws") -> str:
        return self.run("template", release, str(CHART), "--namespace", namespace,
                        "--kube-version", KUBE_VERSION, *set_args).stdout

    def template(self, *set_args: str, namespace: str = "ops",
                 release: str = "ws") -> list[Manifest]:
        text = self.template_text(*set_args, namespace=namespace, release=release)
        return [doc for doc in yaml.safe_load_all(text) if doc]


@pytest.fixture(scope="session")
def helm() -> Helm:
    return Helm(str(binaries.ensure("helm")))


def find(docs: list[Manifest], kind: str, name: str | None = None,
         namespace: str | None = None) -> list[Manifest]:
    return [d for d in docs if d["kind"] == kind
            and (name is None or d["metadata"]["name"] == name)
            and (namespace is None or d["metadata"].get("namespace") == namespace)]


def one(docs: list[Manifest], kind: str, name: str | None = None,
        namespace: str | None = None) -> Manifest:
    found = find(docs, kind, name, namespace)
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def rule_table(rules: list[dict[str, Any]]) -> dict[tuple[str, str], set[str]]:
    """(apiGroup, resource) -> verbs, merged over every rule that grants them."""
    table: dict[tuple[str, str], set[str]] = {}
    for rule in rules:
        assert "resourceNames" not in rule and "nonResourceURLs" not in rule, rule
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                table.setdefault((group, resource), set()).update(rule["verbs"])
    return table
