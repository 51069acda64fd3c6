"""The client side's one Kubernetes wrapper (warmstart.cli.kube) as the demo uses it: kubectl
and server-side apply under the caller's field manager, the polling reads that answer None
or False for what is not there, and the one error type for everything else."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import LocalCluster
from warmstart.cli.errors import CliError, ClusterUnavailableError, NotFoundError
from warmstart.cli.kube import Kube, KubeOptions, wait_until


@pytest.fixture
def kube(cluster: LocalCluster, namespace: str) -> Iterator[Kube]:
    wrapper = Kube.connect(KubeOptions(kubeconfig=str(cluster.kubeconfig), namespace=namespace),
                           kubectl_path=cluster.info.kubectl, field_manager="warmstart-test")
    try:
        yield wrapper
    finally:
        wrapper.close()


def test_apply_kubectl_and_polling_reads(kube: Kube) -> None:
    assert kube.kubeconfig and kube.namespace_exists() and kube.default_service_account()
    kube.apply([{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "applied"},
                 "data": {"a": "1"}}])
    managers = kube.kubectl("get", "configmap", "applied", "-n", kube.namespace,
                            "--show-managed-fields", "-o",
                            "jsonpath={.metadata.managedFields[*].manager}")
    assert managers.split() == ["warmstart-test"]
    assert kube.pods("app=nothing-here") == []
    assert kube.deployment("missing") is None
    with pytest.raises(NotFoundError, match=r"WarmStartJob .*/missing is gone"):
        kube.wsj("missing")
    with pytest.raises(CliError, match=r"kubectl get configmap missing .*failed"):
        kube.kubectl("get", "configmap", "missing", "-n", kube.namespace)


def test_wait_until_returns_the_value_or_names_what_it_waited_for() -> None:
    assert wait_until("a value", lambda: 7, timeout=1) == 7
    started = time.monotonic()
    with pytest.raises(CliError, match="timed out after 0s waiting for nothing"):
        wait_until("nothing", lambda: None, timeout=0.2, interval=0.05)
    assert time.monotonic() - started < 5


def test_a_dead_server_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    config = tmp_path / "kubeconfig"
    config.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:9'}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u, namespace: ns}}]\n"
        "users: [{name: u, user: {token: t}}]\n")
    kube = Kube.connect(KubeOptions(kubeconfig=str(config)))
    try:
        assert kube.namespace == "ns" and kube.kubeconfig == str(config)
        with pytest.raises(ClusterUnavailableError, match="cannot reach the Kubernetes API"):
            kube.namespace_exists()
    finally:
        kube.close()
