"""Replacing the operator process an earlier demo run started, and nothing else."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from warmstart.demo.install import stop_previous
from warmstart_localcluster.processes import MARKER_ENV


def write_pid(state: Path, pid: int) -> None:
    (state / "demo").mkdir(parents=True, exist_ok=True)
    (state / "demo" / "operator.pid").write_text(f"{pid}\n")


def sleeper(state: Path, *, marked: bool, argv_tag: str) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    if marked:
        env[MARKER_ENV] = str(state)
    # The tag lands in the command line, as "-m warmstart_operator" does for the operator.
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", argv_tag],
                            env=env)


def test_the_earlier_runs_operator_is_stopped(tmp_path: Path) -> None:
    proc = sleeper(tmp_path, marked=True, argv_tag="warmstart_operator")
    try:
        write_pid(tmp_path, proc.pid)
        assert stop_previous(tmp_path) is True
        assert proc.wait(timeout=20) != 0
        assert not (tmp_path / "demo" / "operator.pid").exists()
    finally:
        proc.kill()


def test_a_reused_pid_of_another_process_is_left_alone(tmp_path: Path) -> None:
    unmarked = sleeper(tmp_path, marked=False, argv_tag="warmstart_operator")
    other_cluster = sleeper(tmp_path / "elsewhere", marked=True, argv_tag="warmstart_operator")
    not_operator = sleeper(tmp_path, marked=True, argv_tag="something-else")
    try:
        for proc in (unmarked, other_cluster, not_operator):
            write_pid(tmp_path, proc.pid)
            assert stop_previous(tmp_path) is False
            assert proc.poll() is None
    finally:
        for proc in (unmarked, other_cluster, not_operator):
            proc.kill()
            proc.wait()


def test_no_pid_file_means_nothing_to_stop(tmp_path: Path) -> None:
    assert stop_previous(tmp_path) is False
