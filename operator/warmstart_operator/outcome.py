"""What one reconcile decided, handed to the controller that writes it.

A reconciler reads, decides, and may create children (a Job is created before its name is
written, so a crash never loses one); it never writes its object's status itself. The
controller writes `status` once, only if it changed, then runs `after_write` (a rollout is
applied only after the status that explains it is stored), posts `events`, enqueues `wake`
and schedules `requeue_after`.

One step needs its status stored before it may go on: a job's resolved parent is persisted
before its training Job is created. Rather than end the reconcile there and start another
(a queue hop and every read again), the reconciler calls `write_now`, which hands the
status to the same controller write and carries on with the object it returned.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from warmstart.api.conditions import Condition
from warmstart.api.constants import ConditionStatus

# Stores a status on the object as read and returns the object as written.
StatusWriter = Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]


@dataclass
class Outcome:
    obj: dict[str, Any] | None  # the object as read; None: gone, nothing to write
    status: dict[str, Any] | None = None  # the new status in API form; None: leave it
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (type, reason, note)
    requeue_after: float | None = None
    after_write: list[Callable[[], None]] = field(default_factory=list)
    writer: StatusWriter | None = None  # the controller's write, for write_now
    written: bool = False  # a status was stored during the reconcile (events may follow)

    def write_now(self, status: dict[str, Any]) -> None:
        """Store `status` before going on; `obj` becomes the object as written."""
        assert self.writer is not None and self.obj is not None, "a reconciler without a writer"
        if status != (self.obj.get("status") or {}):
            self.obj = self.writer(self.obj, status)
            self.written = True

    def event(self, reason: str, message: str, warning: bool = False) -> None:
        self.events.append(("Warning" if warning else "Normal", reason, message))

    def look_again(self, seconds: float | None) -> None:
        """The earliest of the times asked for wins."""
        if seconds is None:
            return
        self.requeue_after = seconds if self.requeue_after is None else min(
            self.requeue_after, seconds)


def condition(kind: str, ok: bool, reason: str, message: str, generation: int | None,
              now: dt.datetime) -> Condition:
    return Condition(type=kind, status=ConditionStatus.TRUE if ok else ConditionStatus.FALSE,
                     reason=reason, message=message[:32768], last_transition_time=now,
                     observed_generation=generation)


def to_datetime(epoch_seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch_seconds, dt.UTC).replace(microsecond=0)


def parse_time(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
