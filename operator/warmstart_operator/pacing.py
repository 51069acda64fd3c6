"""When each object next needs a look, as its reconciler said.

A reconcile returns how long its object can wait (a rollout in progress: a second or two; a
training Job: half a minute; nothing going on: longer). Events reconcile at once whatever
this says; the timers, which tick at a fixed short interval for every object, pass an object
by until its time has come, so an idle lineage or a long training costs no API requests
between looks.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

Key = tuple[str, str, str]  # (kind, namespace, name)


class Pacer:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._due: dict[Key, float] = {}
        self._lock = threading.Lock()

    def next_look(self, key: Key, seconds: float | None) -> None:
        """After a reconcile: look again in `seconds`; None: only when an event says so."""
        with self._lock:
            if seconds is None:
                self._due.pop(key, None)
            else:
                self._due[key] = self._clock() + seconds

    def due(self, key: Key) -> bool:
        """Whether a timer tick should reconcile now (yes for anything never seen)."""
        with self._lock:
            when = self._due.get(key)
        return when is None or self._clock() >= when

    def forget(self, key: Key) -> None:
        with self._lock:
            self._due.pop(key, None)
