"""The Kopf wiring holds no finalizer and no timer: two indexes (jobs by lineage, lineages
by namespace for the storage-prefix claim) and event handlers that only enqueue keys (so
uninstalling needs no manual step)."""

from __future__ import annotations

import kopf

from warmstart_operator import handlers


def test_only_an_index_and_event_handlers_are_registered() -> None:
    assert handlers.wsj_by_lineage is not None
    assert handlers.lineages_by_namespace is not None
    registry = kopf.get_default_registry()
    assert registry._spawning.get_all_handlers() == []  # no timers, no daemons
    assert registry._changing.get_all_handlers() == []  # no create/update/delete handlers
    assert len(registry._indexing.get_all_handlers()) == 2
    assert len(registry._watching.get_all_handlers()) == 3
