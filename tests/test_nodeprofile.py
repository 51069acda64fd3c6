"""The test suite's node profile (tests/nodeprofile.py): the default stays the node agent's,
and the real node's differences are the images built here and `kubectl logs`."""

from __future__ import annotations

import ipaddress
import sys
from pathlib import Path

import pytest

from tests import nodeprofile
from tests.nodeprofile import NodeProfile
from warmstart_localcluster import realnode


def test_the_default_is_the_node_agent_and_a_typo_is_refused(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(nodeprofile.ENV, raising=False)
    assert nodeprofile.requested() == "agent"
    assert not nodeprofile.shares_one_cluster("agent")
    monkeypatch.setenv(nodeprofile.ENV, "kubelet")
    assert nodeprofile.requested() == "kubelet"
    assert nodeprofile.shares_one_cluster("kubelet")
    monkeypatch.setenv(nodeprofile.ENV, "kubelets")
    with pytest.raises(pytest.UsageError, match="agent, kubelet"):
        nodeprofile.requested()


def test_the_profile_is_read_from_the_cluster_itself(tmp_path: Path) -> None:
    assert NodeProfile.of(tmp_path).kind == "agent"
    (tmp_path / realnode.MARKER).touch()
    assert NodeProfile.of(tmp_path).kind == "kubelet"


def test_the_agent_keeps_what_tests_wrote_and_runs_the_trainer_from_this_venv() -> None:
    agent = NodeProfile("agent")
    assert agent.image("python:3.11-slim") == "python:3.11-slim"
    assert agent.operator_env() == {
        "WARMSTART_TRAINER_COMMAND": f"{sys.executable} -m warmstart_trainer"}
    assert agent.chart_values() == []
    assert agent.pod_network.is_loopback


def test_a_real_node_runs_the_images_built_here(tmp_path: Path) -> None:
    real = NodeProfile("kubelet")
    assert real.image("python:3.11-slim") == nodeprofile.TRAINER_IMAGE
    assert real.operator_env() == {"WARMSTART_TRAINER_IMAGE": nodeprofile.TRAINER_IMAGE}
    values = real.chart_values()
    assert values[::2] == ["--set"] * (len(values) // 2)
    assert f"operator.trainer.image={nodeprofile.TRAINER_IMAGE}" in values
    assert any(v.startswith("image.repository=") for v in values)
    # Pods get addresses on the node's bridge, beside (never equal to) the node's own.
    assert ipaddress.ip_address(real.host_ip) in real.pod_network
    assert not real.pod_network.is_loopback


def test_the_agents_pod_log_is_its_files(tmp_path: Path) -> None:
    logs = tmp_path / "pods" / "ns_p-1_uid" / "logs"
    logs.mkdir(parents=True)
    (logs / "main.log").write_text("hello\n")
    (tmp_path / "pods" / "ns_p-10_uid" / "logs").mkdir(parents=True)
    (tmp_path / "pods" / "ns_p-10_uid" / "logs" / "main.log").write_text("other\n")
    assert NodeProfile("agent").pod_log(["kubectl"], tmp_path, "ns", "p-1") == "hello\n"
