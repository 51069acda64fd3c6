"""Starting, finding and stopping the local cluster's processes.

Every process the cluster starts (components and pods alike) carries the environment
variable MARKER_ENV set to the cluster's state directory. Stopping the cluster kills every
process that carries it, so a test run killed half-way leaves nothing the next run trips
over, even processes whose pid files were lost.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

MARKER_ENV = "WARMSTART_LOCALCLUSTER"


def start(
    name: str,
    argv: Sequence[str],
    state_dir: Path,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> int:
    """Starts a detached component with its output in logs/<name>.log; returns its pid."""
    logs = state_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    full_env = {**os.environ, **(env or {}), MARKER_ENV: str(state_dir)}
    with (logs / f"{name}.log").open("ab") as log:
        proc = subprocess.Popen(
            list(argv),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=full_env,
            cwd=cwd or state_dir,
            start_new_session=True,
        )
    return proc.pid


def marked_pids(state_dir: Path) -> list[int]:
    """Pids of every live process started for this cluster (components and pods)."""
    wanted = f"{MARKER_ENV}={state_dir}".encode()
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if wanted in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


def stop(proc: subprocess.Popen[Any], grace_seconds: float = 30.0) -> None:
    """SIGTERM one child, SIGKILL it if it outlives the grace, and reap it either way."""
    proc.terminate()
    try:
        proc.wait(timeout=grace_seconds)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def stop_all(state_dir: Path, grace_seconds: float = 10.0) -> int:
    """SIGTERM every marked process, SIGKILL what is left after the grace; returns count."""
    pids = marked_pids(state_dir)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_seconds
    while time.monotonic() < deadline and _alive(pids):
        time.sleep(0.2)
    for pid in _alive(pids):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _alive(pids):
        time.sleep(0.1)
    return len(pids)


def _alive(pids: list[int]) -> list[int]:
    alive = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z":
            alive.append(pid)
    return alive


def is_alive(pid: int) -> bool:
    return bool(_alive([pid]))


def log_tail(state_dir: Path, name: str, lines: int = 20) -> str:
    path = state_dir / "logs" / f"{name}.log"
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])
