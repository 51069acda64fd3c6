"""The pacer: timers reconcile an object only once its reconciler's "look again in" passed."""

from __future__ import annotations

from tests.fakeclock import FakeClock
from warmstart_operator.pacing import Pacer


def test_an_object_is_due_when_never_seen_or_its_time_has_come() -> None:
    clock = FakeClock(100.0)
    pacer = Pacer(clock)
    key = ("ModelLineage", "ns", "reviews")
    assert pacer.due(key)
    pacer.next_look(key, 30)
    clock.now += 29.9
    assert not pacer.due(key)
    clock.now += 0.1
    assert pacer.due(key)
    # A rollout asks for a quick look: the shorter time wins at once.
    pacer.next_look(key, 1)
    assert not pacer.due(key)
    clock.now += 1
    assert pacer.due(key)
    assert pacer.due(("ModelLineage", "other-ns", "reviews"))


def test_none_means_only_events_bring_it_back_and_forget_drops_it() -> None:
    clock = FakeClock(100.0)
    pacer = Pacer(clock)
    key = ("WarmStartJob", "ns", "week1")
    pacer.next_look(key, 60)
    pacer.next_look(key, None)  # terminal: timers stop for it anyway
    assert pacer.due(key)
    pacer.next_look(key, 60)
    pacer.forget(key)
    assert pacer.due(key)
