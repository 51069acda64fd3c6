"""Bringing a cluster up and down leaves nothing behind, and bad set-ups say what to do.

These start their own throwaway clusters (in a temporary state dir), separate from the
session's shared one.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from warmstart_localcluster import binaries, cluster, processes
from warmstart_localcluster.errors import ClusterError


def _kubectl(info: cluster.ClusterInfo, *args: str) -> str:
    return subprocess.run(
        [info.kubectl, f"--kubeconfig={info.kubeconfig}", *args],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout


def _pod_pids(state: Path) -> list[int]:
    # Pod processes carry the cluster marker too; the components are the ones we started.
    return [pid for pid in processes.marked_pids(state)
            if b"time.sleep" in Path(f"/proc/{pid}/cmdline").read_bytes()]


def _wait(check: object, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.3)
    raise AssertionError("condition not reached")


@pytest.mark.cluster
def test_a_killed_run_is_cleaned_up_by_the_next(tmp_path: Path) -> None:
    state = tmp_path / "cluster"
    first = cluster.up(state, fresh=True)
    try:
        _kubectl(first, "run", "sleeper", "--image=local", "--restart=Never", "--command",
                 "--", "python", "-c", "import time; time.sleep(600)")
        _wait(lambda: _pod_pids(state))
        leftovers = processes.marked_pids(state)
        assert len(leftovers) >= 6  # etcd, apiserver, controllers, S3, node agent, the pod
    except BaseException:
        cluster.down(state)  # a failure before the "death" must not leave a cluster running
        raise

    # The test run "dies" here without calling down(): the next run starts over cleanly.
    second = cluster.up(state, fresh=True)
    try:
        assert not any(processes.is_alive(pid) for pid in leftovers)
        assert "node/warmstart-node" in _kubectl(second, "get", "nodes", "-o", "name")
    finally:
        cluster.down(state)
    assert processes.marked_pids(state) == []


@pytest.mark.cluster
def test_pods_die_with_a_killed_node_agent(tmp_path: Path) -> None:
    state = tmp_path / "cluster"
    info = cluster.up(state, fresh=True)
    try:
        _kubectl(info, "run", "sleeper", "--image=local", "--restart=Never", "--command", "--",
                 "python", "-c", "import time; time.sleep(600)")
        _wait(lambda: _pod_pids(state))
        (pod_pid,) = _pod_pids(state)
        agent = [pid for pid in processes.marked_pids(state)
                 if b"warmstart_localcluster.nodeagent" in
                 Path(f"/proc/{pid}/cmdline").read_bytes()
                 and b"shim" not in Path(f"/proc/{pid}/cmdline").read_bytes()]
        assert len(agent) == 1
        os.kill(agent[0], signal.SIGKILL)
        _wait(lambda: not processes.is_alive(pod_pid), timeout=10)
    finally:
        cluster.down(state)


def test_pinned_port_in_use_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    monkeypatch.setenv("WARMSTART_APISERVER_PORT", str(port))
    try:
        with pytest.raises(ClusterError, match=f"port {port} .*already in use"):
            cluster.up(tmp_path / "cluster", fresh=True)
    finally:
        holder.close()
    assert processes.marked_pids((tmp_path / "cluster").resolve()) == []


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
