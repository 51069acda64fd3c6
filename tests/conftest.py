"""Shared fixtures: one real local cluster (kube-apiserver, controllers, a real node that
runs the images scripts/build-images made, SeaweedFS S3) per pytest run, a fresh namespace
and bucket per test.

Tests that request `cluster` (directly or through `namespace`, `s3_bucket`, ...) are marked
`cluster`, so `pytest -m "not cluster"` runs the unit tests without starting anything.
Set WARMSTART_TEST_STATE to reuse a cluster you started yourself (`warmstart-cluster up`);
it is then left running.

A real node exists once per machine (fixed bridge, address ranges and image store), so
every pytest-xdist worker attaches to ONE session cluster, started by the first worker
that needs it and stopped when the run ends. Tests that start a cluster of their own (the
demo, `up`/`down`, the benchmarks) are marked `own_node`: a run leaves them out, and
`pytest --own-node` runs only them, one at a time, when no session cluster holds the node
(scripts/test.sh runs both phases).
"""

from __future__ import annotations

import fcntl
import json
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
import yaml
from kubernetes import client, config

from tests.leftovers import session_state
from warmstart.demo import workloads as demo_workloads
from warmstart.demo.errors import DemoError
from warmstart_localcluster import cluster as localcluster

CLUSTER_FIXTURES = {"cluster", "namespace", "s3_bucket", "s3_client", "s3_env", "kube"}
# The image of every pod a test makes: Python 3.11, the trainer's packages, non-root.
TRAINER_IMAGE = demo_workloads.TRAINER_IMAGE
OWN_NODE = "own_node"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--own-node", action="store_true",
                     help="run only the tests that start a cluster of their own (marked "
                          f"{OWN_NODE}), which every other run leaves out")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if CLUSTER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.cluster)
        if item.get_closest_marker(OWN_NODE):
            item.add_marker(pytest.mark.cluster)
    # The machine's one real node is the session cluster's or an own-node test's, never
    # both: each phase takes its own tests.
    own_phase = bool(config.getoption("--own-node"))
    kept = [item for item in items if bool(item.get_closest_marker(OWN_NODE)) == own_phase]
    left_out = [item for item in items if item not in kept]
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = kept
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


def processes_with(token: str) -> list[int]:
    """The machine's processes whose command line contains token. A real node's container
    processes are in a PID namespace of their own, but this machine's /proc shows them."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and token.encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue  # gone meanwhile
    return found


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

    def apply(self, *docs: dict[str, Any]) -> None:
        self.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs))

    def pod_phase(self, namespace: str, pod: str) -> str:
        """The pod's phase; empty while the pod does not exist."""
        out = self.kubectl("-n", namespace, "get", "pod", pod, "-o", "json", check=False).stdout
        return str(json.loads(out)["status"].get("phase", "")) if out else ""

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

    def pod_log(self, namespace: str, pod: str) -> str:
        """Every container's log of the pod (empty while it has none)."""
        return self.kubectl("logs", "-n", namespace, pod, "--all-containers", "--tail=-1",
                            check=False).stdout


# Beside the shared session cluster's state dir: the test run that started it. A worker of
# the same run attaches, anything else (a killed earlier run's cluster) is started afresh.
# Written before `up`, so that a cluster that failed half-way up is stopped at the end too.
RUN_MARKER_SUFFIX = ".test-run"
# Without pytest-xdist this process is the whole run.
_THIS_RUN = uuid.uuid4().hex


def _run_id(config: pytest.Config) -> str:
    workerinput = getattr(config, "workerinput", None)
    return str(workerinput["testrunuid"]) if workerinput else _THIS_RUN


def _run_marker(state: Path) -> Path:
    return state.with_name(state.name + RUN_MARKER_SUFFIX)


def check_images() -> None:
    """The node runs only images that were built here: fail early, naming the fix."""
    try:
        demo_workloads.check_images()
    except DemoError as exc:  # says which image is missing and how to build it
        pytest.fail(str(exc), pytrace=False)


def _shared_cluster(state: Path, run: str) -> localcluster.ClusterInfo:
    """The run's one session cluster: the first worker that needs it starts it (under a
    file lock, so the others wait and attach); pytest_sessionfinish stops it."""
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
        return localcluster.up(state, fresh=True)


@pytest.fixture(scope="session")
def cluster(pytestconfig: pytest.Config) -> LocalCluster:
    reuse = os.environ.get("WARMSTART_TEST_STATE")
    if reuse:
        info = localcluster.status(Path(reuse))
        if info is None:
            pytest.fail(f"WARMSTART_TEST_STATE={reuse} names no running cluster")
        return LocalCluster(info)
    return LocalCluster(_shared_cluster(session_state(), _run_id(pytestconfig)))


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Stops the shared session cluster once, in the process that ran the whole session
    (the xdist controller, after every worker is done; or the only process)."""
    if hasattr(session.config, "workerinput") or os.environ.get("WARMSTART_TEST_STATE"):
        return
    state = session_state()
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
