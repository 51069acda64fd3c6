"""Shared fixtures: one real local cluster (kube-apiserver, controllers, node agent,
SeaweedFS S3) per pytest run, a fresh namespace and bucket per test.

Tests that request `cluster` (directly or through `namespace`, `s3_bucket`, ...) are marked
`cluster`, so `pytest -m "not cluster"` runs the unit tests without starting anything.
Set WARMSTART_TEST_STATE to reuse a cluster you started yourself (`warmstart-cluster up`);
it is then left running. WARMSTART_TEST_NODE=kubelet runs the pods on a real node instead
of the node agent (tests/nodeprofile.py).
"""

from __future__ import annotations

import fcntl
import functools
import os
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from kubernetes import client, config

from tests.nodeprofile import NodeProfile, check_images, requested, shares_one_cluster
from warmstart_localcluster import cluster as localcluster
from warmstart_localcluster import paths

CLUSTER_FIXTURES = {"cluster", "namespace", "s3_bucket", "s3_client", "s3_env", "kube"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if CLUSTER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.cluster)
    # Slow tests (minutes each) first, in their usual order: with pytest-xdist handing out
    # one test at a time (scripts/test.sh), the longest start at once on different workers
    # and the many short ones fill in around them, instead of one long test starting last.
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def wait_for(what: str, check: Callable[[], Any], timeout: float = 180,
             interval: float = 0.5) -> Any:
    """Polls check() until it returns something truthy; fails naming what it waited for."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last: {last!r}")


@dataclass
class LocalCluster:
    """What tests need of the running cluster."""

    info: localcluster.ClusterInfo

    @property
    def kubeconfig(self) -> Path:
        return Path(self.info.kubeconfig)

    @property
    def state_dir(self) -> Path:
        return Path(self.info.state_dir)

    @property
    def s3_endpoint(self) -> str:
        return self.info.s3_endpoint

    def s3_env(self, tenant: str | None = None) -> dict[str, str]:
        return self.info.s3_env(tenant)

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [self.info.kubectl, f"--kubeconfig={self.info.kubeconfig}", *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stderr}"
            )
        return result

    def wait_established(self, *crds: str, timeout: float = 60) -> None:
        """Polls instead of `kubectl wait --for=condition=Established`, which errors out
        ("accessor error") when it reads a CRD before its status has any conditions."""
        path = '{.status.conditions[?(@.type=="Established")].status}'
        for crd in crds:
            def established(crd: str = crd) -> bool:
                return self.kubectl("get", crd, "-o", f"jsonpath={path}",
                                    check=False).stdout == "True"

            wait_for(f"{crd} to be established", established, timeout=timeout)

    def api_client(self) -> client.ApiClient:
        return config.new_client_from_config(config_file=str(self.kubeconfig))

    def s3_client(self, access_key: str | None = None, secret_key: str | None = None) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.info.s3_endpoint,
            aws_access_key_id=access_key or self.info.s3_access_key,
            aws_secret_access_key=secret_key or self.info.s3_secret_key,
            region_name=self.info.s3_region,
        )

    @functools.cached_property
    def profile(self) -> NodeProfile:
        """The node agent or a real node: what that changes for a test."""
        return NodeProfile.of(self.state_dir)

    def pod_log(self, namespace: str, pod: str) -> str:
        kubectl = [self.info.kubectl, f"--kubeconfig={self.info.kubeconfig}"]
        return self.profile.pod_log(kubectl, self.state_dir, namespace, pod)


# Beside the shared session cluster's state dir: the test run that started it. A worker of
# the same run attaches, anything else (a killed earlier run's cluster) is started afresh.
# Written before `up`, so that a cluster that failed half-way up is stopped at the end too.
RUN_MARKER_SUFFIX = ".test-run"
# Without pytest-xdist this process is the whole run.
_THIS_RUN = uuid.uuid4().hex


def _test_state() -> Path:
    # WARMSTART_TEST_CLUSTER gives a second checkout's test run its own cluster.
    return Path(os.environ.get("WARMSTART_TEST_CLUSTER", paths.cache_dir() / "test-cluster"))


def _run_id(config: pytest.Config) -> str:
    workerinput = getattr(config, "workerinput", None)
    return str(workerinput["testrunuid"]) if workerinput else _THIS_RUN


def _run_marker(state: Path) -> Path:
    return state.with_name(state.name + RUN_MARKER_SUFFIX)


def _shared_cluster(state: Path, node: str, run: str) -> localcluster.ClusterInfo:
    """The run's one session cluster: the first worker that needs it starts it (under a
    file lock, so the others wait and attach); pytest_sessionfinish stops it."""
    if node == "kubelet":
        check_images()
    state.parent.mkdir(parents=True, exist_ok=True)
    with state.with_name(f"{state.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        marker = _run_marker(state)
        info = localcluster.status(state)
        if info is not None and marker.is_file() and marker.read_text() == run:
            return info
        marker.write_text(run)
        # `fresh` also stops whatever a killed earlier run left behind in this state dir.
        return localcluster.up(state, fresh=True, node=node)


@pytest.fixture(scope="session")
def cluster(pytestconfig: pytest.Config) -> Iterator[LocalCluster]:
    node = requested()
    reuse = os.environ.get("WARMSTART_TEST_STATE")
    if reuse:
        info = localcluster.status(Path(reuse))
        if info is None:
            pytest.fail(f"WARMSTART_TEST_STATE={reuse} names no running cluster")
        attached = LocalCluster(info)
        if attached.profile.kind != node:
            pytest.fail(f"WARMSTART_TEST_STATE={reuse} runs a {attached.profile.kind} node; "
                        f"WARMSTART_TEST_NODE asks for {node}")
        yield attached
        return
    state = _test_state()
    if shares_one_cluster(node):
        yield LocalCluster(_shared_cluster(state, node, _run_id(pytestconfig)))
        return
    # Each pytest-xdist worker gets a cluster of its own on the node agent (clusters never
    # share ports or pod addresses).
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:
        state = state.with_name(f"{state.name}-{worker}")
    # `fresh` also stops whatever a killed earlier run left behind in this state dir.
    info = localcluster.up(state, fresh=True)
    try:
        yield LocalCluster(info)
    finally:
        localcluster.down(state)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Stops the shared session cluster once, in the process that ran the whole session
    (the xdist controller, after every worker is done; or the only process)."""
    if hasattr(session.config, "workerinput") or os.environ.get("WARMSTART_TEST_STATE"):
        return
    if not shares_one_cluster(requested()):
        return
    state = _test_state()
    if _run_marker(state).is_file():
        localcluster.down(state)
        _run_marker(state).unlink()


def _dns_name(request: pytest.FixtureRequest, limit: int) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")
    suffix = uuid.uuid4().hex[:6]
    return f"{base[: limit - len(suffix) - 1].strip('-')}-{suffix}"


@pytest.fixture
def kube(cluster: LocalCluster) -> Iterator[client.ApiClient]:
    api = cluster.api_client()
    try:
        yield api
    finally:
        api.close()


@pytest.fixture
def namespace(cluster: LocalCluster, request: pytest.FixtureRequest) -> Iterator[str]:
    name = _dns_name(request, 50)
    api = cluster.api_client()
    core = client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": name, "labels": {"warmstart.dev/test": "true"}}})
    # Pods are refused until the namespace's default ServiceAccount exists.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        accounts = core.list_namespaced_service_account(name).items
        if any(sa.metadata.name == "default" for sa in accounts):
            break
        time.sleep(0.2)
    try:
        yield name
    finally:
        core.delete_namespace(name, propagation_policy="Background")
        api.close()


@pytest.fixture
def s3_env(cluster: LocalCluster) -> dict[str, str]:
    return cluster.s3_env()


@pytest.fixture
def s3_client(cluster: LocalCluster) -> Any:
    return cluster.s3_client()


@pytest.fixture
def s3_bucket(cluster: LocalCluster, request: pytest.FixtureRequest) -> Iterator[str]:
    name = _dns_name(request, 40)
    s3 = cluster.s3_client()
    s3.create_bucket(Bucket=name)
    try:
        yield name
    finally:
        paginator = s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=name):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                s3.delete_objects(Bucket=name, Delete={"Objects": keys})
        s3.delete_bucket(Bucket=name)


@pytest.fixture
def own_cluster_state() -> Iterator[Path]:
    """A state directory for a cluster of the test's own (stopped and removed afterwards),
    for tests that start, stop or install into a cluster the way a user would."""
    # A short path: SeaweedFS puts unix sockets in the state directory (108-byte limit).
    path = Path(tempfile.mkdtemp(prefix="wsown-"))
    try:
        yield path
    finally:
        localcluster.down(path)
        shutil.rmtree(path, ignore_errors=True)
