"""What one reconcile decided, handed to the controller that writes it.

A reconciler reads, decides, and may create children (a Job is created before its name is
written, so a crash never loses one); it never writes its object's status itself. The
controller writes `status` once, only if it changed, then runs `after_write` (a rollout is
applied only after the status that explains it is stored), posts `events`, enqueues `wake`
and schedules `requeue_after`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from warmstart.api.conditions import Condition
from warmstart.api.constants import ConditionStatus


@dataclass
class Outcome:
    obj: dict[str, Any] | None  # the object as read; None: gone, nothing to write
    status: dict[str, Any] | None = None  # the new status in API form; None: leave it
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (type, reason, note)
    requeue_after: float | None = None
    after_write: list[Callable[[], None]] = field(default_factory=list)

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
