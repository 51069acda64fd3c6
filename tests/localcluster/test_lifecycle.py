"""Bringing a cluster up again after a killed run leaves nothing behind, and bad set-ups
say what to do.

The cluster test starts its own throwaway cluster (`own_node`: after the session's is
down, the machine has room for one real node).
"""

from __future__ import annotations

import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from tests import leftovers
from tests.conftest import TRAINER_IMAGE, processes_with
from warmstart_localcluster import binaries, cluster, processes
from warmstart_localcluster.errors import ClusterError
from warmstart_localcluster.node import containerd, kubelet, network


def _kubectl(info: cluster.ClusterInfo, *args: str) -> str:
    return subprocess.run(
        [info.kubectl, f"--kubeconfig={info.kubeconfig}", *args],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout


def _wait(check: object, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.3)
    raise AssertionError("condition not reached")


@pytest.mark.own_node
def test_a_killed_run_is_cleaned_up_by_the_next(own_cluster_state: Path) -> None:
    state = own_cluster_state
    token = f"sleeper-{uuid.uuid4().hex}"
    host_before = network.snapshot()
    first = cluster.up(state, fresh=True)
    try:
        _kubectl(first, "run", "sleeper", f"--image={TRAINER_IMAGE}", "--restart=Never",
                 "--command", "--", "python", "-c", f"import time; time.sleep(600)  # {token}")
        _wait(lambda: processes_with(token), timeout=120)
        leftovers = processes.marked_pids(state) + processes_with(token)
        # etcd, apiserver, controllers, S3, containerd, kubelet, kube-proxy, scheduler, ...
        assert len(leftovers) >= 9
    except BaseException:
        cluster.down(state)  # a failure before the "death" must not leave a cluster running
        raise

    # The test run "dies" here without calling down(): the next run starts over cleanly,
    # the pod's process included.
    second = cluster.up(state, fresh=True)
    try:
        assert not any(processes.is_alive(pid) for pid in leftovers)
        assert "node/warmstart-node" in _kubectl(second, "get", "nodes", "-o", "name")
    finally:
        cluster.down(state)
    # `down` leaves the host as it was before the first `up`.
    assert processes.marked_pids(state) == []
    assert network.snapshot() == host_before
    assert containerd.mounts_under(state) == []
    assert not any(Path("/sys/fs/cgroup").glob(f"*/{kubelet.CGROUP_ROOT.strip('/')}"))


def test_pinned_port_in_use_is_a_clear_error(
    own_cluster_state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    short_state_dir = own_cluster_state  # never started: the port is refused first
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    monkeypatch.setenv("WARMSTART_APISERVER_PORT", str(port))
    try:
        with pytest.raises(ClusterError, match=f"port {port} .*already in use"):
            cluster.up(short_state_dir, fresh=True)
    finally:
        holder.close()
    assert processes.marked_pids(short_state_dir.resolve()) == []


def test_a_state_dir_too_long_for_the_nodes_sockets_is_refused_up_front(
        tmp_path: Path) -> None:
    state = tmp_path / ("x" * cluster.MAX_STATE_DIR_CHARS)
    with pytest.raises(ClusterError, match=r"characters long; the node's unix sockets under "
                                           r"it .* allow at most 64: choose a shorter"):
        cluster.up(state, fresh=True)
    assert not state.exists()  # refused before anything was made


def test_binary_override_that_is_missing_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WARMSTART_ETCD", "/nonexistent/etcd")
    with pytest.raises(binaries.BinaryError, match="WARMSTART_ETCD=/nonexistent/etcd is not an"):
        binaries.ensure("etcd")


def test_status_of_a_stale_state_dir_is_none(tmp_path: Path) -> None:
    state = tmp_path / "stale"
    state.mkdir()
    (state / "cluster.json").write_text("{}")
    assert cluster.status(state) is None
    with pytest.raises(ClusterError, match="run `warmstart-cluster up` first"):
        cluster.ClusterInfo.load(tmp_path / "nothing-here")


def test_only_a_test_runs_leftover_cluster_is_taken_down_before_a_run(tmp_path: Path) -> None:
    temp = tmp_path / "tmp"
    assert leftovers.is_test_leftover(temp / "wsown-abc123", temp)
    assert leftovers.is_test_leftover(temp / "wsbench-x1" / "deeper", temp)
    assert leftovers.is_test_leftover(temp / "pytest-of-root" / "pytest-10" / "t0" / "c", temp)
    assert leftovers.is_test_leftover(leftovers.session_state().resolve(), temp)
    # A developer's or the demo's cluster is never stopped behind its owner's back.
    assert not leftovers.is_test_leftover(temp / "node", temp)
    assert not leftovers.is_test_leftover(Path("/root/.cache/warmstart/cluster"), temp)
    assert not leftovers.is_test_leftover(tmp_path / "wsown-elsewhere", temp)
