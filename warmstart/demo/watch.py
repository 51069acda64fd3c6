"""Waiting on WarmStartJobs and on the serving rollout, showing progress while it happens:
phase changes, the trainer's step/loss lines, the server pods coming and going."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from warmstart.api.constants import TERMINAL_JOB_PHASES, JobPhase
from warmstart.cli.kube import Kube, pod_ready
from warmstart.demo.console import Console
from warmstart.demo.errors import DemoError
from warmstart.demo.podlogs import shown_line

POLL_SECONDS = 2.0
MODEL_VERSION_ANNOTATION = "warmstart.dev/model-version"


def phase_of(wsj: dict[str, Any]) -> str:
    return str((wsj.get("status") or {}).get("phase") or "Pending")


def failure_message(wsj: dict[str, Any]) -> str:
    """The reason a job failed, from its conditions (the operator's own words)."""
    conditions = (wsj.get("status") or {}).get("conditions") or []
    failed = [c for c in conditions if c.get("type") == "Failed" and c.get("status") == "True"]
    chosen = failed or [c for c in conditions if c.get("status") == "False"]
    if not chosen:
        return "no condition says why"
    return "; ".join(f"{c.get('reason')}: {c.get('message')}" for c in chosen)


class PodLogs(Protocol):
    """A pod's log as it grows (podlogs.KubectlLogs)."""

    def hint(self, pod: str) -> str: ...

    def new_lines(self, pod: str) -> list[str]: ...

    def tail(self, pod: str, count: int = 20) -> list[str]: ...


@dataclass
class JobWatcher:
    kube: Kube
    logs: PodLogs
    console: Console
    _phases: dict[str, str] = field(default_factory=dict)
    _pods: dict[str, str] = field(default_factory=dict)

    def follow(self, names: Sequence[str], timeout: float) -> dict[str, dict[str, Any]]:
        """Until every job is Succeeded, Rejected or Failed; returns the final objects.
        A Failed job stops the demo with its reason and the end of its trainer's log."""
        deadline = time.monotonic() + timeout
        final: dict[str, dict[str, Any]] = {}
        while len(final) < len(names):
            for name in names:
                if name in final:
                    continue
                wsj = self.kube.wsj(name)
                self._show_phase(name, wsj)
                self._show_logs(name, wsj)
                if phase_of(wsj) in TERMINAL_JOB_PHASES:
                    final[name] = wsj
                    if phase_of(wsj) == JobPhase.FAILED:
                        self._fail(name, wsj)
            if len(final) < len(names):
                if time.monotonic() > deadline:
                    raise DemoError(f"timed out after {timeout:.0f}s waiting for "
                                    f"{', '.join(n for n in names if n not in final)}")
                time.sleep(POLL_SECONDS)
        return final

    def _show_phase(self, name: str, wsj: dict[str, Any]) -> None:
        phase = phase_of(wsj)
        if self._phases.get(name) == phase:
            return
        self._phases[name] = phase
        status = wsj.get("status") or {}
        note = ""
        if phase == JobPhase.QUEUED:
            note = " (one training per lineage at a time: it waits for the one running)"
        elif phase == JobPhase.TRAINING and status.get("parent"):
            note = f" from {status['parent'].get('version')} (Job {status.get('jobName')})"
        elif phase in (JobPhase.SUCCEEDED, JobPhase.REJECTED):
            summary = (status.get("metrics") or {}).get("summary")
            note = f": holdout {summary}" if summary else ""
        self.console.say(f"WarmStartJob {name}: {phase}{note}")

    def _trainer_pod(self, wsj: dict[str, Any]) -> str | None:
        job = (wsj.get("status") or {}).get("jobName")
        if not job:
            return None
        pods = self.kube.pods(f"job-name={job}")
        newest = sorted(pods, key=lambda p: p.metadata.creation_timestamp)
        return str(newest[-1].metadata.name) if newest else None

    def _show_logs(self, name: str, wsj: dict[str, Any]) -> None:
        if phase_of(wsj) in (JobPhase.PENDING, JobPhase.QUEUED):
            return
        pod = self._pods.get(name) or self._trainer_pod(wsj)
        if pod is None:
            return
        if self._pods.get(name) != pod:
            self._pods[name] = pod
            self.console.say(f"trainer pod {pod} (log: {self.logs.hint(pod)})")
        for line in self.logs.new_lines(pod):
            shown = shown_line(line)
            if shown:
                self.console.detail(shown)

    def _fail(self, name: str, wsj: dict[str, Any]) -> None:
        pod = self._pods.get(name) or self._trainer_pod(wsj)
        tail = "\n".join(self.logs.tail(pod, 15)) if pod else "(no trainer pod ran)"
        raise DemoError(f"WarmStartJob {name} failed: {failure_message(wsj)}\n"
                        f"last lines of its trainer log:\n{tail}")


def serving_pod(kube: Kube, selector: str, version: str) -> Any | None:
    """A ready server pod of the Deployment's template for ``version``, if one is up."""
    for pod in kube.pods(selector):
        annotations = pod.metadata.annotations or {}
        if annotations.get(MODEL_VERSION_ANNOTATION) == version and pod_ready(pod):
            return pod
    return None


def pod_states(kube: Kube, selector: str) -> dict[str, str]:
    states: dict[str, str] = {}
    for pod in kube.pods(selector):
        version = (pod.metadata.annotations or {}).get(MODEL_VERSION_ANNOTATION, "no version")
        if pod.metadata.deletion_timestamp:
            state = "terminating"
        elif pod_ready(pod):
            state = "ready"
        else:
            state = f"{pod.status.phase if pod.status else 'Pending'}, not ready"
        states[str(pod.metadata.name)] = f"{version}: {state}"
    return states


def wait_for_serving(kube: Kube, console: Console, lineage: str, selector: str,
                     version: str, timeout: float = 600) -> Any:
    """Until the lineage reports ``version`` as serving and a server pod of it is ready
    (and the old ones are gone); shows each server pod's state as it changes."""
    deadline = time.monotonic() + timeout
    shown: dict[str, str] = {}
    while True:
        states = pod_states(kube, selector)
        for name, state in states.items():
            if shown.get(name) != state:
                console.say(f"server pod {name} ({state})")
        shown = states
        status = kube.get_lineage(lineage).get("status") or {}
        pod = serving_pod(kube, selector, version)
        settled = all(s.startswith(f"{version}:") for s in states.values())
        if status.get("servingVersion") == version and pod is not None and settled:
            return pod
        if time.monotonic() > deadline:
            raise DemoError(f"timed out after {timeout:.0f}s waiting for {version} to serve; "
                            f"lineage says {status.get('servingVersion')}, pods {states}")
        time.sleep(POLL_SECONDS)
