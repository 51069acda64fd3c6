"""What the operator keeps in memory about WarmStartJobs, and who to wake when one changes.

The running operator fills this from a `@kopf.index` of WarmStartJobs by (namespace,
lineage); the in-memory test harness fills it from its fake cluster. Either way the
reconcilers never LIST: "which jobs belong to this lineage", "is a slot free", "which job
is next in the queue" are answered from here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from warmstart.api.constants import TERMINAL_JOB_PHASES, JobPhase

LineageKey = tuple[str, str]  # (namespace, lineage name)
# Reads the index: the jobs of one lineage as last seen.
JobsOf = Callable[[str, str], list["JobRef"]]


@dataclass(frozen=True)
class JobRef:
    """One WarmStartJob as the index holds it."""

    name: str
    uid: str
    created: str  # metadata.creationTimestamp: RFC 3339 in UTC, so it sorts as text
    lineage: str
    phase: str | None
    job_name: str | None  # set once its training Job was created: it holds a slot
    suspend: bool
    scheduled_by: str | None  # the lineage whose schedule created it
    output_digest: str | None  # set once its Job completed and the child manifest verified
    promotion: str | None = None  # spec.promotion: Auto | Manual | Never, None: the lineage's

    @property
    def finished(self) -> bool:
        return self.phase in TERMINAL_JOB_PHASES

    @property
    def holds_slot(self) -> bool:
        return bool(self.job_name) and not self.finished

    @property
    def waiting(self) -> bool:
        """Waits for a slot: not started, not finished, not suspended."""
        return not self.job_name and not self.finished and not self.suspend

    @property
    def registering(self) -> bool:
        return self.phase == JobPhase.REGISTERING and bool(self.output_digest)


def ref_from_body(body: Mapping[str, Any]) -> JobRef | None:
    meta = body.get("metadata") or {}
    spec = body.get("spec") or {}
    status = body.get("status") or {}
    lineage = (spec.get("lineageRef") or {}).get("name")
    if not lineage or not meta.get("name"):
        return None
    return JobRef(
        name=str(meta["name"]), uid=str(meta.get("uid") or ""),
        created=str(meta.get("creationTimestamp") or ""), lineage=str(lineage),
        phase=status.get("phase"), job_name=status.get("jobName"),
        suspend=bool(spec.get("suspend")),
        scheduled_by=(meta.get("labels") or {}).get("warmstart.dev/scheduled-by"),
        output_digest=(status.get("output") or {}).get("manifestDigest"),
        promotion=spec.get("promotion"),
    )


def _order(refs: Iterable[JobRef]) -> list[JobRef]:
    return sorted(refs, key=lambda r: (r.created, r.name))


def queue_position(refs: Iterable[JobRef], me: str, limit: int,
                   admitted: Iterable[str] = ()) -> str | None:
    """None if job `me` may create its training Job now, else a job that goes first.

    Jobs holding a slot are the ones the index shows with a Job, plus `admitted`: those this
    operator created a Job for whose status write the index has not seen yet.
    """
    refs = list(refs)
    admitted = set(admitted)
    active = _order(r for r in refs if r.holds_slot or (r.name in admitted and not r.finished))
    if any(r.name == me for r in active):
        return None
    if len(active) >= limit:
        return active[0].name
    waiting = [r for r in _order(refs) if r.waiting and r.name not in admitted]
    slots = limit - len(active)
    if any(r.name == me for r in waiting[:slots]) or not waiting:
        return None
    return waiting[0].name


def next_waiting(refs: Iterable[JobRef], limit: int) -> list[str]:
    """The jobs a freed slot admits: the first waiting ones, as many as slots are free."""
    refs = list(refs)
    free = limit - sum(1 for r in refs if r.holds_slot)
    waiting = [r.name for r in _order(refs) if r.waiting]
    return waiting[:max(0, free)]


def frees_slot(event_type: str, ref: JobRef) -> bool:
    """Whether this event of a job may have handed its slot on (ended, deleted, suspended)."""
    return event_type == "DELETED" or ref.finished or ref.suspend
