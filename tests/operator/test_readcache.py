"""Reads from the watches (readcache.py): served without a GET, refreshed by every event
and write, never shared between readers, and dropped when a write finds them stale."""

from __future__ import annotations

import pytest

from tests.fakeclock import FakeClock
from tests.operator.fakecluster import FakeCluster
from tests.operator.harness import NS, Harness, make_lineage, make_wsj
from warmstart_operator.cluster import Conflict
from warmstart_operator.readcache import CachedReads


def wsj(name: str = "j") -> dict[str, object]:
    return make_wsj(name).obj()


def cached() -> tuple[FakeCluster, CachedReads]:
    kube = FakeCluster(FakeClock(0.0))
    cache = CachedReads(kube)
    kube.watch(cache.observe)
    return kube, cache


def test_a_watched_object_is_read_without_a_get() -> None:
    kube, cache = cached()
    kube.put("WarmStartJob", wsj())
    reads = kube.reads
    assert cache.get_wsj(NS, "j") == kube.get("WarmStartJob", NS, "j")
    assert kube.reads == reads


def test_a_miss_reads_the_api() -> None:
    kube = FakeCluster(FakeClock(0.0))
    kube.put("WarmStartJob", wsj())  # before the cache watched: never delivered
    cache = CachedReads(kube)
    assert cache.get_wsj(NS, "j") is not None
    assert cache.get_job(NS, "j-train") is None
    assert kube.reads == 2


def test_every_change_and_the_deletion_are_seen() -> None:
    kube, cache = cached()
    kube.put("WarmStartJob", wsj())
    kube.update("WarmStartJob", NS, "j", lambda o: o["spec"].update(suspend=True))
    found = cache.get_wsj(NS, "j")
    assert found is not None and found["spec"]["suspend"] is True
    kube.remove("WarmStartJob", NS, "j")
    assert cache.get_wsj(NS, "j") is None


def test_readers_get_copies() -> None:
    kube, cache = cached()
    kube.put("WarmStartJob", wsj())
    first = cache.get_wsj(NS, "j")
    assert first is not None
    first["spec"]["suspend"] = True
    second = cache.get_wsj(NS, "j")
    assert second is not None and "suspend" not in second["spec"]


def test_a_write_refreshes_and_a_conflict_drops_the_entry() -> None:
    kube, cache = cached()
    kube.put("WarmStartJob", wsj())
    read = cache.get_wsj(NS, "j")
    assert read is not None
    written = cache.replace_status("warmstartjobs", read, {"phase": "Pending"})
    assert cache.get_wsj(NS, "j") == written
    # A stale copy (the watch behind a change made elsewhere) is refused at write time...
    stale = {**written, "metadata": {**written["metadata"], "resourceVersion": "1"}}
    cache.observe("WarmStartJob", "MODIFIED", stale)
    with pytest.raises(Conflict):
        cache.replace_status("warmstartjobs", stale, {"phase": "Training"})
    # ...and the retry reads the API server's copy.
    reads = kube.reads
    assert cache.get_wsj(NS, "j") == kube.get("WarmStartJob", NS, "j")
    assert kube.reads == reads + 1


def test_a_job_reconcile_reads_nothing_the_watches_delivered() -> None:
    h = Harness()
    h.create(make_lineage().obj())
    reads = h.kube.reads
    h.create(make_wsj("week1").obj())
    # One GET: the training Job, which does not exist yet (a miss is never trusted).
    assert h.kube.reads - reads == 1, h.kube.reads - reads
    assert h.phase("week1") == "Training"
