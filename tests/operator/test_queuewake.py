"""Unit tests of the queue's wake-up bookkeeping (pure; no cluster)."""

from __future__ import annotations

from tests.fakeclock import FakeClock
from warmstart_operator.queuewake import QueueWake, freed_lineage


def test_a_parked_job_is_passed_by_until_woken_or_idle_too_long() -> None:
    clock = FakeClock()
    queue = QueueWake(max_idle=300, clock=clock)
    assert queue.should_look("ns", "a")  # never seen: look
    queue.park("ns", "a", "reviews", "2026-11-27T10:00:00Z")
    assert not queue.should_look("ns", "a")
    clock.now = 299
    assert not queue.should_look("ns", "a")
    clock.now = 300
    assert queue.should_look("ns", "a")  # the safety net
    queue.unpark("ns", "a")
    assert queue.parked() == 0


def test_wake_picks_the_earliest_parked_jobs_of_that_lineage_only() -> None:
    queue = QueueWake(max_idle=300, clock=FakeClock())
    queue.park("ns", "late", "reviews", "2026-11-27T10:00:09Z")
    queue.park("ns", "early", "reviews", "2026-11-27T10:00:01Z")
    queue.park("ns", "middle", "reviews", "2026-11-27T10:00:05Z")
    queue.park("ns", "other-lineage", "spam", "2026-11-27T09:00:00Z")
    queue.park("other-ns", "same-name", "reviews", "2026-11-27T09:00:00Z")
    queue.park("ns", "suspended", "reviews", "2026-11-27T09:00:00Z", wakeable=False)
    assert queue.wake("ns", "reviews", slots=2) == ["early", "middle"]
    assert queue.should_look("ns", "early") and queue.should_look("ns", "middle")
    for name in ("late", "other-lineage", "suspended"):
        assert not queue.should_look("ns", name)
    assert not queue.should_look("other-ns", "same-name")
    # Parked again after its look, a woken job waits for the next wake-up.
    queue.park("ns", "middle", "reviews", "2026-11-27T10:00:05Z")
    assert not queue.should_look("ns", "middle")


def test_freed_lineage_names_events_that_can_free_a_slot() -> None:
    def body(phase: str | None, suspend: bool = False) -> dict[str, object]:
        return {"spec": {"lineageRef": {"name": "reviews"}, "suspend": suspend},
                "status": {"phase": phase} if phase else {}}

    assert freed_lineage("DELETED", body("Training")) == "reviews"
    for phase in ("Succeeded", "Rejected", "Failed"):
        assert freed_lineage("MODIFIED", body(phase)) == "reviews"
    assert freed_lineage("MODIFIED", body("Training", suspend=True)) == "reviews"
    for unfinished in ("Pending", "Queued", "Training", "Registering", None):
        assert freed_lineage("MODIFIED", body(unfinished)) is None
    assert freed_lineage("DELETED", {"spec": {}}) is None


def test_a_finished_job_frees_its_slot_once() -> None:
    queue = QueueWake(max_idle=300, clock=FakeClock())
    assert queue.first_end("ns", "a")
    assert not queue.first_end("ns", "a")  # later events of the same finished job
    assert queue.first_end("ns", "b")
    queue.park("ns", "c", "reviews", "2026-11-27T10:00:00Z")
    queue.forget("ns", "a")
    queue.forget("ns", "c")
    assert queue.first_end("ns", "a") and queue.parked() == 0
