"""The work queue's contract: dedup, one worker per key, delayed adds (earliest wins),
per-key back-off."""

from __future__ import annotations

import threading

from tests.fakeclock import FakeClock
from warmstart_operator.workqueue import WorkQueue


def test_a_key_waits_once_however_often_it_is_added() -> None:
    q: WorkQueue[str] = WorkQueue(FakeClock())
    for key in ("a", "b", "a", "a"):
        q.add(key)
    assert [q.pop_due(), q.pop_due(), q.pop_due()] == ["a", "b", None]


def test_a_key_added_while_processed_comes_back_after_done() -> None:
    q: WorkQueue[str] = WorkQueue(FakeClock())
    q.add("a")
    assert q.pop_due() == "a"
    q.add("a")
    assert q.pop_due() is None  # never two workers on one key
    q.done("a")
    assert q.pop_due() == "a"


def test_delayed_adds_are_due_at_their_time_and_the_earliest_wins() -> None:
    clock = FakeClock()
    q: WorkQueue[str] = WorkQueue(clock)
    q.add_after("a", 10)
    q.add_after("a", 3)
    q.add_after("a", 30)
    assert q.pop_due() is None
    assert q.next_due() == 3
    clock.now = 3
    assert q.pop_due() == "a"
    q.done("a")
    clock.now = 100
    assert q.pop_due() is None  # the later times were superseded


def test_an_immediate_add_supersedes_a_delayed_one() -> None:
    clock = FakeClock()
    q: WorkQueue[str] = WorkQueue(clock)
    q.add_after("a", 10)
    q.add("a")
    assert q.pop_due() == "a"
    q.done("a")
    clock.now = 10
    assert q.pop_due() is None


def test_back_off_doubles_per_failure_up_to_a_cap_and_forget_resets() -> None:
    q: WorkQueue[str] = WorkQueue(FakeClock(), backoff_base=0.5, backoff_max=4)
    assert [q.add_rate_limited("a") for _ in range(5)] == [0.5, 1, 2, 4, 4]
    assert q.backoff("a") == 5
    q.forget("a")
    assert q.add_rate_limited("a") == 0.5


def test_get_blocks_until_a_key_is_added_or_shut_down() -> None:
    q: WorkQueue[str] = WorkQueue()
    got: list[str | None] = []
    worker = threading.Thread(target=lambda: got.append(q.get()))
    worker.start()
    q.add("a")
    worker.join(5)
    assert got == ["a"]
    q.shut_down()
    assert q.get() is None
