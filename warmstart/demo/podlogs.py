"""Following a pod's log on the local node, and picking the lines worth showing.

The local node agent has no kubelet log API: it writes each container's output to
``<state>/pods/<namespace>_<pod>_<uid>/logs/<container>.log``, the file `warmstart-cluster
logs` prints. The demo reads the same file incrementally instead of starting that command
every second.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

# "2024-06-01 10:00:00,123 INFO warmstart_trainer.train_loop: step 3/75 epoch ..." -> the
# message after the logger name.
_PREFIX = re.compile(r"^\S+ \S+ (?:INFO|WARNING|ERROR) [\w.]+: ")
# What a person watching a training wants to see: where the parent came from, step/loss
# progress, each evaluation, and the result. Everything else (library notices) is noise.
_SHOWN = (
    re.compile(r"^verified parent "),
    re.compile(r"^loaded \w+ from parent "),
    re.compile(r"^built \w+ with random weights"),
    re.compile(r"^step \d+/\d+ "),
    re.compile(r"^evaluated step "),
    re.compile(r"^trained \d+ steps"),
    re.compile(r"^evaluated candidate"),
    re.compile(r"^committed version "),
    re.compile(r"^resumed training "),
    re.compile(r"^error: "),
)
_MAX_WIDTH = 150


def shown_line(line: str) -> str | None:
    """The message of a trainer log line worth showing, shortened; None for the rest."""
    message = _PREFIX.sub("", line.rstrip("\n"))
    if not any(pattern.search(message) for pattern in _SHOWN):
        return None
    # The ETA caveat is for people reading raw logs; the demo says it once, up front.
    message = message.replace(" (at most: early stopping may end sooner)", "")
    if message.startswith("evaluated candidate"):
        # The full metrics dict follows; the demo prints its own table.
        message = message.split(": {", 1)[0]
    if len(message) > _MAX_WIDTH:
        message = message[: _MAX_WIDTH - 3] + "..."
    return message


def pod_log_file(state_dir: Path, namespace: str, pod: str) -> Path | None:
    """The newest log file of ``pod`` (one container per pod in the demo), if it ran here."""
    found = sorted(
        state_dir.glob(f"pods/{namespace}_{pod}_*/logs/*.log"), key=lambda p: p.stat().st_mtime
    )
    return found[-1] if found else None


@dataclass
class LogFollower:
    """Hands out the lines a pod's log gained since the last call."""

    state_dir: Path
    namespace: str
    _offsets: dict[str, int] = field(default_factory=dict)

    def hint(self, pod: str) -> str:
        """The command that prints the pod's whole log."""
        return f"warmstart-cluster logs {self.namespace} {pod}"

    def new_lines(self, pod: str) -> list[str]:
        path = pod_log_file(self.state_dir, self.namespace, pod)
        if path is None:
            return []
        offset = self._offsets.get(pod, 0)
        try:
            with path.open("rb") as handle:
                handle.seek(offset)
                chunk = handle.read()
        except OSError:
            return []
        # Keep a partial last line for the next call: the trainer may be mid-write.
        complete = chunk[: chunk.rfind(b"\n") + 1]
        self._offsets[pod] = offset + len(complete)
        return complete.decode("utf-8", errors="replace").splitlines()

    def tail(self, pod: str, count: int = 20) -> list[str]:
        path = pod_log_file(self.state_dir, self.namespace, pod)
        if path is None:
            return []
        return path.read_text(encoding="utf-8", errors="replace").splitlines()[-count:]
