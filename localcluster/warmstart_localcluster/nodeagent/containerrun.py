"""What the node agent tracks of a pod's containers, and the pod status it reports.

Kept apart from the pod's worker thread: these are plain data and pure functions, the
shape of kubelet's container and pod status that the Job and Deployment controllers read.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from warmstart_localcluster.nodeagent import probes

_TERMINATION_MESSAGE_LIMIT = 4096


def now_rfc3339() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class ContainerRun:
    """What kubelet tracks for one container across its restarts."""

    spec: dict[str, Any]
    init: bool = False
    proc: subprocess.Popen[bytes] | None = None
    restart_count: int = 0
    state: str = "waiting"
    waiting_reason: str = "ContainerCreating"
    waiting_message: str = ""
    started_at: str = ""
    started_mono: float = 0.0
    terminated: dict[str, Any] | None = None
    last_state: dict[str, Any] = field(default_factory=dict)
    restart_at: float | None = None
    launched: bool = False
    env: dict[str, str] = field(default_factory=dict)
    readiness: probes.ProbeState | None = None
    liveness: probes.ProbeState | None = None

    def started(self, env: dict[str, str]) -> None:
        """The container's process has just been started with ``env``."""
        self.env = env
        self.state = "running"
        self.waiting_reason = self.waiting_message = ""
        self.started_at = now_rfc3339()
        self.started_mono = time.monotonic()
        self.restart_at = None
        readiness, liveness = self.spec.get("readinessProbe"), self.spec.get("livenessProbe")
        self.readiness = probes.ProbeState(readiness) if readiness else None
        self.liveness = probes.ProbeState(liveness, ok=True) if liveness else None

    @property
    def name(self) -> str:
        return str(self.spec["name"])

    @property
    def ready(self) -> bool:
        if self.state != "running":
            return False
        return self.readiness.ok if self.readiness else True

    def status(self, pod_uid: str) -> dict[str, Any]:
        state: dict[str, Any]
        if self.state == "running":
            state = {"running": {"startedAt": self.started_at}}
        elif self.state == "terminated" and self.terminated:
            state = {"terminated": self.terminated}
        else:
            waiting: dict[str, Any] = {"reason": self.waiting_reason}
            if self.waiting_message:
                waiting["message"] = self.waiting_message
            state = {"waiting": waiting}
        image = self.spec.get("image", "local")
        out: dict[str, Any] = {
            "name": self.name,
            "image": image,
            "imageID": f"local://{image}",
            "ready": self.ready,
            "restartCount": self.restart_count,
            "started": self.state == "running",
            "state": state,
            "lastState": self.last_state,
        }
        if self.state != "waiting" or self.restart_count:
            out["containerID"] = f"local://{pod_uid}/{self.name}/{self.restart_count}"
        return out


def set_condition(conditions: dict[str, dict[str, Any]], kind: str, value: bool) -> None:
    """Sets a pod condition; its transition time changes only when its status does."""
    status = "True" if value else "False"
    current = conditions.get(kind)
    if current and current["status"] == status:
        return
    conditions[kind] = {
        "type": kind,
        "status": status,
        "lastProbeTime": None,
        "lastTransitionTime": now_rfc3339(),
    }


def pod_status(phase: str, conditions: dict[str, dict[str, Any]], ip: str, start_time: str,
               containers: list[ContainerRun], inits: list[ContainerRun], uid: str,
               reason: str, message: str) -> dict[str, Any]:
    status: dict[str, Any] = {
        "phase": phase,
        "conditions": list(conditions.values()),
        "hostIP": "127.0.0.1",
        "hostIPs": [{"ip": "127.0.0.1"}],
        "podIP": ip,
        "podIPs": [{"ip": ip}],
        "startTime": start_time,
        "containerStatuses": [c.status(uid) for c in containers],
    }
    if inits:
        status["initContainerStatuses"] = [c.status(uid) for c in inits]
    if reason:
        status["reason"] = reason
    if message:
        status["message"] = message
    return status


def termination_message(pod_dir: Path, run: ContainerRun, code: int) -> str:
    """What the container wrote to its termination-message file (or, if it asked for it and
    failed without one, its log's tail), as kubelet reports it."""
    try:
        data = (pod_dir / "containers" / run.name / "termination-log").read_bytes()
    except OSError:
        data = b""
    text = data[:_TERMINATION_MESSAGE_LIMIT].decode(errors="replace")
    if not text and code != 0 and run.spec.get(
            "terminationMessagePolicy") == "FallbackToLogsOnError":
        text = (pod_dir / "logs" / f"{run.name}.log").read_bytes()[-2048:].decode(
            errors="replace")
    return text
