"""One keyed work queue with delays: the whole scheduling model of the operator.

The same model as client-go's workqueue that controller-runtime (and so Kueue and Kubeflow
Trainer) build on:
- events only add keys; a key waiting in the queue is there once however often it is added;
- a key is handed to one worker at a time: added again while being processed, it is queued
  once more when that worker is done (so the newest state is always looked at);
- `add_after` is the only "look again later": a reconcile returns `requeue_after` and the
  worker schedules it (the earliest pending time wins);
- a reconcile that raised is retried after a per-key exponential back-off, reset by the next
  success; the back-off is exposed so it can be a metric.

The clock is injected. `pop_due(now)` never blocks (tests and the in-memory harness drive
the queue by hand); `get()` blocks for the worker threads of the running operator.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)

BACKOFF_BASE_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 300.0


@dataclass(frozen=True)
class Key:
    """A reconcile key: which kind, and the object's namespace and name."""

    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


class WorkQueue(Generic[K]):
    def __init__(self, clock: Callable[[], float] = time.monotonic,
                 backoff_base: float = BACKOFF_BASE_SECONDS,
                 backoff_max: float = BACKOFF_MAX_SECONDS) -> None:
        self._clock = clock
        self._base = backoff_base
        self._max = backoff_max
        self._ready: list[K] = []  # FIFO of keys due now
        self._queued: set[K] = set()  # keys in _ready
        self._processing: set[K] = set()
        self._dirty: set[K] = set()  # added while processing: queue again when done
        self._waiting: list[tuple[float, int, K]] = []  # heap of (due, seq, key)
        self._due: dict[K, float] = {}  # earliest pending time per delayed key
        self._failures: dict[K, int] = {}
        self._seq = 0
        self._shut = False
        self._cond = threading.Condition()

    # -- adding ---------------------------------------------------------------------------
    def add(self, key: K) -> None:
        with self._cond:
            self._add_locked(key)

    def _add_locked(self, key: K) -> None:
        self._due.pop(key, None)  # due now supersedes any later look
        if key in self._processing:
            self._dirty.add(key)
            return
        if key not in self._queued:
            self._queued.add(key)
            self._ready.append(key)
            self._cond.notify()

    def add_after(self, key: K, seconds: float) -> None:
        if seconds <= 0:
            self.add(key)
            return
        with self._cond:
            due = self._clock() + seconds
            current = self._due.get(key)
            if current is not None and current <= due:
                return
            self._due[key] = due
            self._seq += 1
            heapq.heappush(self._waiting, (due, self._seq, key))
            self._cond.notify()

    def add_rate_limited(self, key: K) -> float:
        """After a failed reconcile: retry after this key's back-off; returns the delay."""
        with self._cond:
            failures = self._failures.get(key, 0)
            self._failures[key] = failures + 1
        delay = float(min(self._max, self._base * 2.0 ** failures))
        self.add_after(key, delay)
        return delay

    def forget(self, key: K) -> None:
        """After a successful reconcile: the key's back-off starts from the base again."""
        with self._cond:
            self._failures.pop(key, None)

    def backoff(self, key: K) -> int:
        """How many times in a row this key's reconcile has failed."""
        with self._cond:
            return self._failures.get(key, 0)

    def backing_off(self) -> int:
        with self._cond:
            return len(self._failures)

    # -- taking -----------------------------------------------------------------------------
    def _promote_due_locked(self, now: float) -> None:
        while self._waiting and self._waiting[0][0] <= now:
            due, _, key = heapq.heappop(self._waiting)
            if self._due.get(key) != due:
                continue  # superseded by an earlier time or an immediate add
            self._due.pop(key)
            self._add_locked(key)

    def pop_due(self, now: float | None = None) -> K | None:
        """The next key due at `now` (default: the clock), marked as processing; or None."""
        with self._cond:
            self._promote_due_locked(self._clock() if now is None else now)
            return self._take_locked()

    def _take_locked(self) -> K | None:
        if not self._ready:
            return None
        key = self._ready.pop(0)
        self._queued.discard(key)
        self._processing.add(key)
        return key

    def get(self, timeout: float | None = None) -> K | None:
        """Blocks until a key is due (or shutdown / timeout: None)."""
        with self._cond:
            deadline = None if timeout is None else time.monotonic() + timeout
            while not self._shut:
                self._promote_due_locked(self._clock())
                key = self._take_locked()
                if key is not None:
                    return key
                wait = None
                if self._waiting:
                    wait = max(0.0, self._waiting[0][0] - self._clock())
                if deadline is not None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return None
                    wait = left if wait is None else min(wait, left)
                self._cond.wait(wait)
            return None

    def done(self, key: K) -> None:
        with self._cond:
            self._processing.discard(key)
            if key in self._dirty:
                self._dirty.discard(key)
                self._add_locked(key)

    def next_due(self) -> float | None:
        """When the earliest delayed key is due (for a driver that advances a fake clock)."""
        with self._cond:
            live = [due for due, _, key in self._waiting if self._due.get(key) == due]
            return min(live) if live else None

    def idle(self) -> bool:
        with self._cond:
            return not self._ready and not self._processing

    def __len__(self) -> int:
        with self._cond:
            return len(self._ready) + len(self._due)

    def shut_down(self) -> None:
        with self._cond:
            self._shut = True
            self._cond.notify_all()
