"""Unit tests of the node agent's pure decisions (no cluster)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from warmstart_localcluster.nodeagent import podspec
from warmstart_localcluster.nodeagent.podspec import ConfigError


def pod(**spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "p", "namespace": "ns", "uid": "u-1",
                     "labels": {"app": "web"}, "annotations": {}},
        "spec": {"serviceAccountName": "sa", "nodeName": "n", **spec},
        "status": {"podIP": "127.1.0.5", "hostIP": "127.0.0.1"},
    }


STORE: dict[tuple[str, str, str], dict[str, str]] = {
    ("secret", "ns", "creds"): {"user": "alice", "password": "pw"},
    ("configmap", "ns", "cfg"): {"MODE": "fast", "LEVEL": "3"},
}


def lookup(kind: str, ns: str, name: str) -> Mapping[str, str] | None:
    return STORE.get((kind, ns, name))


def test_expand_substitutes_known_keeps_unknown_and_escapes() -> None:
    env = {"A": "1", "B": "two"}
    assert podspec.expand("$(A)-$(B)-$(C)-$$(A)", env) == "1-two-$(C)-$(A)"


def test_field_values() -> None:
    p = pod()
    assert podspec.field_value(p, "metadata.name") == "p"
    assert podspec.field_value(p, "status.podIP") == "127.1.0.5"
    assert podspec.field_value(p, "metadata.labels['app']") == "web"
    assert podspec.field_value(p, "spec.serviceAccountName") == "sa"
    with pytest.raises(ConfigError, match="unsupported fieldRef"):
        podspec.field_value(p, "spec.containers")


def test_container_env_order_and_sources() -> None:
    container = {
        "name": "c",
        "envFrom": [{"configMapRef": {"name": "cfg"}, "prefix": "CFG_"}],
        "env": [
            {"name": "USER", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "user"}}},
            {"name": "GREETING", "value": "hi $(USER) at $(CFG_MODE)"},
            {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory",
                                                               "divisor": "1Mi"}}},
            {"name": "OPT", "valueFrom": {"secretKeyRef": {"name": "nope", "key": "k",
                                                           "optional": True}}},
        ],
        "resources": {"limits": {"memory": "512Mi"}},
    }
    env = podspec.container_env(pod(), container, lookup, {"PATH": "/bin"}, {"memory": "1Gi"})
    assert env["PATH"] == "/bin"
    assert env["CFG_MODE"] == "fast"
    assert env["USER"] == "alice"
    assert env["GREETING"] == "hi alice at fast"
    assert env["IP"] == "127.1.0.5"
    assert env["MEM"] == "512"
    assert "OPT" not in env


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ({"secretKeyRef": {"name": "missing", "key": "k"}}, 'secret "missing" not found'),
        ({"secretKeyRef": {"name": "creds", "key": "nokey"}}, 'key "nokey" not found'),
        ({"configMapKeyRef": {"name": "gone", "key": "k"}}, 'configmap "gone" not found'),
    ],
)
def test_missing_references_are_config_errors(item: dict[str, Any], message: str) -> None:
    container = {"name": "c", "env": [{"name": "X", "valueFrom": item}]}
    with pytest.raises(ConfigError, match=message):
        podspec.container_env(pod(), container, lookup, {}, {})


def test_command_line_requires_a_command() -> None:
    assert podspec.command_line({"name": "c", "command": ["echo"], "args": ["$(A)"]},
                                {"A": "x"}) == ["echo", "x"]
    with pytest.raises(ConfigError, match="must set `command`"):
        podspec.command_line({"name": "c", "args": ["x"]}, {})


def test_quantities() -> None:
    assert podspec.quantity("500m") == 0.5
    assert podspec.quantity("2Gi") == 2 * 2**30
    assert podspec.quantity(3) == 3
    with pytest.raises(ConfigError):
        podspec.quantity("lots")


def test_fits_node_checks_selector_and_extended_resources() -> None:
    labels = {"kubernetes.io/os": "linux"}
    alloc = {"cpu": "2", "memory": "1Gi"}
    assert podspec.fits_node(pod(), labels, alloc) == ""
    assert "nodeSelector" in podspec.fits_node(pod(nodeSelector={"gpu": "a100"}), labels, alloc)
    gpu_pod = pod(containers=[{"name": "c", "resources": {"limits": {"nvidia.com/gpu": "1"}}}])
    assert "insufficient nvidia.com/gpu" in podspec.fits_node(gpu_pod, labels, alloc)


@pytest.mark.parametrize(
    ("states", "restart_pending", "phase"),
    [
        ([], False, "Pending"),
        ([("waiting", None)], False, "Pending"),
        ([("running", None)], False, "Running"),
        ([("terminated", 0)], False, "Succeeded"),
        ([("terminated", 0), ("terminated", 1)], False, "Failed"),
        ([("terminated", 1)], True, "Running"),
        ([("terminated", 0), ("running", None)], False, "Running"),
    ],
)
def test_pod_phase(states: list[tuple[str, int | None]], restart_pending: bool,
                   phase: str) -> None:
    assert podspec.pod_phase(states, restart_pending) == phase


def test_restart_policy_and_backoff() -> None:
    assert podspec.restart_wanted("Always", 0)
    assert podspec.restart_wanted("OnFailure", 2)
    assert not podspec.restart_wanted("OnFailure", 0)
    assert not podspec.restart_wanted("Never", 1)
    assert [podspec.crash_backoff(n) for n in (1, 2, 3, 5, 9)] == [1, 2, 4, 10, 10]
