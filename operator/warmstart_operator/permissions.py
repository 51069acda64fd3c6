"""Makes a missing RBAC rule visible where users look: an Event and a condition."""

from __future__ import annotations

import contextlib
import datetime as dt

from warmstart.api.constants import (
    MODELLINEAGE_KIND,
    MODELLINEAGE_PLURAL,
    WARMSTARTJOB_PLURAL,
)
from warmstart_operator.kube import Kube, KubeError

REASON = "PermissionDenied"


def report_permission_error(kube: Kube, kind: str, namespace: str, name: str,
                            message: str) -> None:
    plural = MODELLINEAGE_PLURAL if kind == MODELLINEAGE_KIND else WARMSTARTJOB_PLURAL
    with contextlib.suppress(KubeError):
        obj = kube.call("GET", kube.custom_path(namespace, plural, name), f"{kind} {name}")
        kube.post_event(obj, "Warning", REASON, message, "operator")
        # Degraded on a lineage, Progressing=False on a job: either way the message names
        # the verb and resource the operator's role lacks.
        kind_of_condition = "Degraded" if kind == MODELLINEAGE_KIND else "Progressing"
        status = "True" if kind == MODELLINEAGE_KIND else "False"
        conditions = [c for c in (obj.get("status") or {}).get("conditions") or []
                      if c.get("type") != kind_of_condition]
        conditions.append({
            "type": kind_of_condition, "status": status, "reason": REASON,
            "message": message[:1024],
            "lastTransitionTime": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "observedGeneration": obj["metadata"].get("generation"),
        })
        kube.patch_status(namespace, plural, name, {"conditions": conditions})
