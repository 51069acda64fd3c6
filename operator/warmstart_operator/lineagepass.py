"""One lineage reconcile's working copy of the status, shared by the lineage reconciler and
the parts it hands work to (lineagerecovery)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from warmstart.api.conditions import LineageConditionType, set_condition
from warmstart.api.modellineage import ModelLineage, ModelLineageStatus
from warmstart_operator.outcome import Outcome, condition


@dataclass
class Pass:
    """One reconcile's working copy and what it found."""

    lineage: ModelLineage
    status: ModelLineageStatus
    out: Outcome
    now: dt.datetime
    generation: int | None
    degraded: bool = False  # a problem found earlier decides Ready

    @property
    def ns(self) -> str:
        return str(self.lineage.metadata["namespace"])

    @property
    def name(self) -> str:
        return str(self.lineage.metadata["name"])

    def set(self, kind: str, ok: bool, reason: str, message: str) -> None:
        self.status.conditions = set_condition(self.status.conditions or [], condition(
            kind, ok, reason, message, self.generation, self.now))

    def degrade(self, reason: str, message: str) -> None:
        self.set(LineageConditionType.DEGRADED, True, reason, message)
        self.set(LineageConditionType.READY, False, reason, message)
        self.degraded = True
        self.out.event(reason, message, warning=True)
