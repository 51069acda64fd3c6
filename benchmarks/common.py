"""What the cluster benchmarks share: a local cluster of their own that is always taken
down, and the operator run as a process against it.

A benchmark runs for minutes to hours, so it is often stopped with `kill` rather than
Ctrl-C; SIGTERM is turned into the same exit so the `finally` blocks still stop the
cluster, the operator and the trainings (the default SIGTERM action would leave them all
running)."""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from warmstart.demo.workloads import TRAINER_IMAGE
from warmstart_localcluster import cluster, processes
from warmstart_localcluster.ports import free_ports
from warmstart_localcluster.processes import MARKER_ENV


def _exit_on_sigterm(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


@contextmanager
def own_cluster() -> Iterator[cluster.ClusterInfo]:
    """A fresh local cluster of the benchmark's own, down again however the block ends. Its
    state dir is a short temporary one (the node's unix sockets live under it, and a socket
    path has at most 107 bytes); removed afterwards unless the block failed (its logs)."""
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    state = Path(tempfile.mkdtemp(prefix="wsbench-"))
    try:
        info = cluster.up(state, fresh=True)
        try:
            yield info
        finally:
            cluster.down(state)
        shutil.rmtree(state, ignore_errors=True)
    except BaseException:
        print(f"the benchmark's cluster state (logs) is kept in {state}", file=sys.stderr)
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def operator_process(info: cluster.ClusterInfo,
                     log: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """The operator against `info`'s cluster, its trainings in Jobs of the trainer image built
    here; yields the process and the port of its metrics endpoint."""
    port = free_ports(1)[0]
    env = {**os.environ, "KUBECONFIG": info.kubeconfig, "WARMSTART_METRICS_PORT": str(port),
           "WARMSTART_METRICS_ADDRESS": "127.0.0.1",
           "WARMSTART_TRAINER_IMAGE": TRAINER_IMAGE,
           MARKER_ENV: info.state_dir}
    with log.open("wb") as output:
        operator = subprocess.Popen([sys.executable, "-m", "warmstart_operator"], env=env,
                                    stdout=output, stderr=subprocess.STDOUT)
    try:
        yield operator, port
    finally:
        processes.stop(operator)


def work_dir(given: Path | None, prefix: str) -> Path:
    """`--workdir` as given (kept for inspection), else a temporary one removed at exit:
    a run writes published models (hundreds of MB) that nobody asked to keep."""
    if given is not None:
        given.mkdir(parents=True, exist_ok=True)
        return given
    made = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, made, True)
    return made
