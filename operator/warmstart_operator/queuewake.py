"""Which Queued WarmStartJobs are worth a look right now.

A queued job can only start when a slot of its lineage frees up: a job ahead of it ends, is
deleted or suspended. Looking costs a LIST of the namespace's WarmStartJobs, so a hundred
queued jobs polled every few seconds would be most of the operator's API traffic. Instead a
job that found itself queued is parked; the periodic timer passes it by without a request,
and the event that frees a slot wakes only the first parked jobs of that lineage, in
creation order, as many as it may admit. A parked job is still looked at after
`max_idle` seconds, the safety net for an event that never reached us.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from warmstart.api.constants import TERMINAL_JOB_PHASES

Key = tuple[str, str]  # (namespace, name)


@dataclass
class _Parked:
    lineage: str
    created: str  # metadata.creationTimestamp: RFC 3339 in UTC, so it sorts as text
    since: float
    # A suspended job waits for its own spec change, not for a slot: never woken for one.
    wakeable: bool = True
    woken: bool = False


def freed_lineage(event_type: str, body: Mapping[str, Any]) -> str | None:
    """The lineage in which this WarmStartJob event may have freed a slot, if any."""
    spec = body.get("spec") or {}
    phase = (body.get("status") or {}).get("phase")
    if event_type == "DELETED" or phase in TERMINAL_JOB_PHASES or spec.get("suspend"):
        lineage = (spec.get("lineageRef") or {}).get("name")
        return str(lineage) if lineage else None
    return None


class QueueWake:
    def __init__(self, max_idle: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_idle = max_idle
        self._clock = clock
        self._parked: dict[Key, _Parked] = {}
        # Jobs whose end already handed their slot on: the events that follow a job's end
        # (its last status write, finalizer removal, deletion) must not wake the queue again.
        self._ended: set[Key] = set()
        self._lock = threading.Lock()

    def first_end(self, namespace: str, name: str) -> bool:
        """True the first time a job is seen finished (its slot is free), False after."""
        with self._lock:
            if (namespace, name) in self._ended:
                return False
            self._ended.add((namespace, name))
            return True

    def forget(self, namespace: str, name: str) -> None:
        """The job is gone: drop everything kept about it."""
        with self._lock:
            self._parked.pop((namespace, name), None)
            self._ended.discard((namespace, name))

    def park(self, namespace: str, name: str, lineage: str, created: str,
             wakeable: bool = True) -> None:
        with self._lock:
            self._parked[(namespace, name)] = _Parked(lineage, created, self._clock(),
                                                      wakeable)

    def unpark(self, namespace: str, name: str) -> None:
        with self._lock:
            self._parked.pop((namespace, name), None)

    def should_look(self, namespace: str, name: str) -> bool:
        with self._lock:
            parked = self._parked.get((namespace, name))
            if parked is None or parked.woken:
                return True
            return self._clock() - parked.since >= self.max_idle

    def wake(self, namespace: str, lineage: str, slots: int) -> list[str]:
        """Marks the first `slots` parked jobs of the lineage for a look; returns them."""
        with self._lock:
            waiting = sorted(
                (p.created, key[1]) for key, p in self._parked.items()
                if key[0] == namespace and p.lineage == lineage and p.wakeable)
            names = [name for _, name in waiting[:slots]]
            for name in names:
                self._parked[(namespace, name)].woken = True
            return names

    def parked(self) -> int:
        with self._lock:
            return len(self._parked)
