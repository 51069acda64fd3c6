"""Following a pod's log through `kubectl logs` (the kubelet's log API), and picking the
lines worth showing."""

from __future__ import annotations

import re

from warmstart.cli.errors import CliError
from warmstart.cli.kube import Kube

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


class KubectlLogs:
    """A pod's log through `kubectl logs`: the lines it gained since the last call."""

    def __init__(self, kube: Kube) -> None:
        self.kube = kube
        self._seen: dict[str, int] = {}

    def hint(self, pod: str) -> str:
        return f"kubectl logs -n {self.kube.namespace} {pod}"

    def _lines(self, pod: str, *args: str) -> list[str]:
        try:
            return self.kube.kubectl("logs", pod, "-n", self.kube.namespace, *args,
                                     timeout=60).splitlines()
        except CliError:
            return []  # not started yet, or gone: nothing to show this time

    def new_lines(self, pod: str) -> list[str]:
        lines = self._lines(pod)
        seen = self._seen.get(pod, 0)
        self._seen[pod] = max(seen, len(lines))
        return lines[seen:]

    def tail(self, pod: str, count: int = 20) -> list[str]:
        return self._lines(pod, f"--tail={count}")
