"""Makes a missing RBAC rule visible where users look: a condition on the object itself.

The controller, the one writer of each object's status, writes what this returns (and
posts a Warning Event): Degraded on a lineage, Progressing=False on a job, either way with
a message naming the verb and resource the operator's role lacks. The next reconcile that
gets through drops the condition again.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from warmstart.api.constants import MODELLINEAGE_KIND

REASON = "PermissionDenied"


def permission_status(kind: str, obj: dict[str, Any], message: str, now: dt.datetime
                      ) -> dict[str, Any]:
    lineage = kind == MODELLINEAGE_KIND
    condition_type = "Degraded" if lineage else "Progressing"
    status = dict(obj.get("status") or {})
    conditions = [c for c in status.get("conditions") or [] if c.get("type") != condition_type]
    conditions.append({
        "type": condition_type, "status": "True" if lineage else "False", "reason": REASON,
        "message": message[:1024], "lastTransitionTime": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "observedGeneration": obj["metadata"].get("generation"),
    })
    status["conditions"] = conditions
    return status
