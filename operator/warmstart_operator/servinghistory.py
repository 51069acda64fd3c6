"""The serving history as the operator writes and reads it (``warmstart.history``).

``record_serving`` is called once a rollout completes and what serves changes, BEFORE the
status says so: if storage cannot take the entry, the status keeps the old serving version
and the next reconcile tries again, so the log never misses a change the status shows.
``cause_of`` decides, from the spec and status alone, why the change happened.
``recovered_previous`` reads the log back when a lineage is re-created.
"""

from __future__ import annotations

import datetime as dt

from warmstart import history
from warmstart.api.conditions import (
    LineageConditionType,
    LineageReason,
    find_condition,
)
from warmstart.api.constants import ConditionStatus
from warmstart.api.modellineage import ModelLineage, ModelLineageStatus
from warmstart.api.signing import HistoryHead

HISTORY_TAMPERED = "ServingHistoryTampered"
LINEAGE_KIND = "ModelLineage"
JOB_KIND = "WarmStartJob"


def cause_of(
    lineage: ModelLineage, status: ModelLineageStatus, desired: str, last_event: str | None
) -> history.Cause:
    """Why ``desired`` now serves: a pin, a rollback, an unpin, the base, or the promotion
    of the version a WarmStartJob trained."""
    name = lineage.metadata.get("name", "")
    generation = lineage.metadata.get("generation")
    pinned = lineage.spec.pinned_version
    if pinned == desired:
        return history.Cause(
            history.PINNED,
            LINEAGE_KIND,
            name,
            f"spec.pinnedVersion={desired} (generation {generation})",
        )
    degraded = find_condition(status.conditions or [], LineageConditionType.DEGRADED)
    if (
        degraded is not None
        and degraded.status == ConditionStatus.TRUE
        and degraded.reason == LineageReason.ROLLED_BACK
        and degraded.message.endswith(f"rolled back to {desired}")
    ):
        return history.Cause(history.ROLLED_BACK, LINEAGE_KIND, name, degraded.message)
    if not pinned and last_event == history.PINNED:
        return history.Cause(
            history.UNPINNED,
            LINEAGE_KIND,
            name,
            f"spec.pinnedVersion removed (generation {generation})",
        )
    entry = next((v for v in status.versions or [] if v.name == desired), None)
    if entry is not None and entry.job_name:
        return history.Cause(history.PROMOTED, JOB_KIND, entry.job_name, entry.reason or "")
    if entry is not None and entry.parent is None:
        return history.Cause(history.BASE, LINEAGE_KIND, name, "spec.base")
    return history.Cause(history.RECOVERED, LINEAGE_KIND, name, "re-indexed from storage")


def record_serving(
    store: history.HistoryStore,
    lineage: ModelLineage,
    status: ModelLineageStatus,
    desired: str,
    now: dt.datetime,
) -> HistoryHead:
    """Append the change to the log; returns the head to keep in status.historyHead.
    Raises history.HistoryError (tampered log) or a storage error."""
    entry = next(v for v in status.versions or [] if v.name == desired)
    storage_uri = lineage.spec.storage.uri
    anchor = status.history_head
    entries = history.verify_history(
        store, storage_uri, history.Head(anchor.seq, anchor.digest) if anchor else None
    )
    last_event = entries[-1][0].cause.event if entries else None
    head = history.append(
        store,
        storage_uri,
        lineage=lineage.metadata.get("name", ""),
        version=desired,
        uri=entry.uri,
        manifest_digest=entry.manifest_digest or "",
        cause=cause_of(lineage, status, desired, last_event),
        now=now,
    )
    return HistoryHead(seq=head.seq, digest=head.digest)


def recovered_previous(
    store: history.HistoryStore, storage_uri: str, serving: str | None
) -> tuple[str | None, HistoryHead | None]:
    """From the log: the version served before ``serving`` (the rollback target) and the
    head to anchor. Raises history.HistoryError when the log was tampered with."""
    entries = history.read_history(store, storage_uri)
    if not entries:
        return None, None
    last, digest = entries[-1]
    head = HistoryHead(seq=last.seq, digest=digest)
    if serving is None or last.version != serving:
        return None, head
    earlier = [e.version for e, _ in entries if e.version != serving]
    return (earlier[-1] if earlier else None), head
