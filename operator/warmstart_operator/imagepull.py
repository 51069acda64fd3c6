"""A training pod whose image cannot be pulled: named, and ended instead of waited on.

The Job controller never fails a Job whose pod waits in ImagePullBackOff (the kubelet keeps
retrying), so without this a WarmStartJob naming a missing image would sit in Training
until activeDeadlineSeconds, if ever. Errors a retry cannot mend end the run at once; a
pull that keeps failing gets a grace period first (OperatorConfig.image_pull_grace_seconds,
the chart's operator.imagePullGraceSeconds), because registries do have bad minutes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from warmstart_operator.outcome import parse_time

# Waiting reasons the kubelet reports for a container whose image it cannot get.
_RETRIED = frozenset({"ErrImagePull", "ImagePullBackOff"})
_FINAL = frozenset({"InvalidImageName", "ErrImageNeverPull"})


@dataclass(frozen=True)
class PullFailure:
    image: str
    reason: str
    message: str
    final: bool
    pod_created: str | None  # the grace runs from the pod's creation, not the job's start

    def describe(self) -> str:
        said = f": {self.message}" if self.message else ""
        return f"image {self.image!r} cannot be pulled ({self.reason}){said}"


def pull_failure(pods: list[dict[str, Any]]) -> PullFailure | None:
    """The first container (init containers included) waiting on an image it cannot pull."""
    for pod in pods:
        status = pod.get("status") or {}
        images = {c.get("name"): c.get("image", "")
                  for key in ("initContainers", "containers")
                  for c in (pod.get("spec") or {}).get(key) or []}
        for cs in (status.get("initContainerStatuses") or []) + (
                status.get("containerStatuses") or []):
            waiting = (cs.get("state") or {}).get("waiting") or {}
            reason = waiting.get("reason") or ""
            if reason in _RETRIED or reason in _FINAL:
                image = cs.get("image") or images.get(cs.get("name"), "")
                return PullFailure(image=image, reason=reason,
                                   message=(waiting.get("message") or "").strip()[-400:],
                                   final=reason in _FINAL,
                                   pod_created=(pod.get("metadata") or {}).get(
                                       "creationTimestamp"))
    return None


def none_ready(job: dict[str, Any]) -> bool:
    """True while the Job has no ready pod: only then can a pod be stuck on its image."""
    return not (job.get("status") or {}).get("ready")


def grace_left(failure: PullFailure, started: dt.datetime, now: dt.datetime,
               grace: float) -> float:
    """Seconds the pull may still fail before the run fails; 0: fail it now. The grace runs
    from the pod's creation (`started` if unknown): a job that sat Queued for hours has a
    long-past start."""
    if failure.final:
        return 0.0
    since = parse_time(failure.pod_created) if failure.pod_created else started
    return max(0.0, grace - (now - since).total_seconds())
