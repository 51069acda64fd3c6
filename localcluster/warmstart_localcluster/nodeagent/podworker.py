"""Runs one pod on the local node: volumes, containers as processes, probes, status.

One thread per pod. It follows kubelet's contract as far as the Job and Deployment
controllers can see it: the same phases, container states, exit codes, termination
messages, restart counts, readiness, and graceful deletion.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

from warmstart_localcluster.nodeagent import podspec, probes, volumes
from warmstart_localcluster.nodeagent.containerrun import (
    ContainerRun,
    now_rfc3339,
    pod_status,
    set_condition,
    termination_message,
)
from warmstart_localcluster.nodeagent.kube import MERGE_PATCH, ApiException
from warmstart_localcluster.nodeagent.podspec import ConfigError, Pod

if TYPE_CHECKING:
    from warmstart_localcluster.nodeagent.agent import Agent

log = logging.getLogger("nodeagent")

_LOCAL_GRACE_CAP = 30.0


class PodWorker(threading.Thread):
    def __init__(self, agent: Agent, pod: Pod) -> None:
        meta = pod["metadata"]
        super().__init__(name=f"pod-{meta['namespace']}/{meta['name']}", daemon=True)
        self.agent = agent
        self.pod = pod
        self.uid: str = meta["uid"]
        self.key = f"{meta['namespace']}/{meta['name']}"
        self.dir = agent.pods_dir / f"{meta['namespace']}_{meta['name']}_{self.uid[:8]}"
        self.wake = threading.Event()
        self.gone = False
        self._lock = threading.Lock()
        self.ip = ""
        self.start_time = ""
        self.vols: volumes.Volumes | None = None
        self.config_error = ""
        self.containers = [ContainerRun(c) for c in pod["spec"].get("containers", [])]
        self.inits = [ContainerRun(c, init=True) for c in pod["spec"].get("initContainers", [])]
        self.init_done = not self.inits
        self.conditions: dict[str, dict[str, Any]] = {}
        self.phase = "Pending"
        self.reason = ""
        self.message = ""
        self._last_sent: str = ""

    # -- called from the agent's watch thread ------------------------------------------
    def update(self, pod: Pod) -> None:
        with self._lock:
            self.pod = pod
        self.wake.set()

    def deleted(self) -> None:
        self.gone = True
        self.wake.set()

    # -- the pod's life ---------------------------------------------------------------
    def run(self) -> None:
        try:
            self._run()
        except Exception:
            log.exception("pod %s: worker crashed", self.key)
            self._kill_all(0)
        finally:
            self.agent.release_ip(self.uid)
            self.agent.forget(self.uid)

    def _current(self) -> Pod:
        with self._lock:
            return self.pod

    def _run(self) -> None:
        self.ip = self.agent.allocate_ip(self.uid)
        self.start_time = now_rfc3339()
        (self.dir / "logs").mkdir(parents=True, exist_ok=True)
        self._set_condition("PodScheduled", True)
        self._set_condition("PodReadyToStartContainers", False)
        self._set_condition("Initialized", self.init_done)
        self._set_condition("ContainersReady", False)
        self._set_condition("Ready", False)
        deadline = self._active_deadline()
        while not self.gone:
            pod = self._current()
            if pod["metadata"].get("deletionTimestamp"):
                self._terminate_for_deletion(pod)
                return
            if self.phase in ("Succeeded", "Failed"):
                self._send_status()
                self.wake.wait(5)
                self.wake.clear()
                continue
            if deadline and time.monotonic() > deadline:
                self._kill_all(0)
                self.phase, self.reason = "Failed", "DeadlineExceeded"
                self.message = "Pod was active on the node longer than the specified deadline"
                self._send_status()
                continue
            if self.vols is None and not self._prepare_volumes(pod):
                self._send_status()
                self.wake.wait(2)
                self.wake.clear()
                continue
            if not self.init_done:
                self._step_init(pod)
            else:
                self._step_containers(pod)
            self._send_status()
            self.wake.wait(0.25)
            self.wake.clear()
        self._kill_all(0)
        self._cleanup()

    def _active_deadline(self) -> float | None:
        seconds = self.pod["spec"].get("activeDeadlineSeconds")
        return time.monotonic() + float(seconds) if seconds else None

    def _prepare_volumes(self, pod: Pod) -> bool:
        try:
            self.vols = volumes.prepare(
                pod, self.dir / "volumes", self.agent.lookup_raw, self.agent.issue_token
            )
        except ConfigError as exc:
            self.config_error = str(exc)
            for c in self.inits + self.containers:
                c.waiting_reason, c.waiting_message = "CreateContainerConfigError", str(exc)
            return False
        self._set_condition("PodReadyToStartContainers", True)
        return True

    # -- containers -------------------------------------------------------------------
    def _launch(self, run: ContainerRun, pod: Pod) -> None:
        spec = run.spec
        run.launched = True
        try:
            env = podspec.container_env(
                self._with_ips(pod), spec, self.agent.lookup_data, self.agent.image_env(pod),
                self.agent.allocatable,
            )
            argv = podspec.command_line(spec, env)
            mount_list = self._mounts(spec)
        except ConfigError as exc:
            run.state, run.waiting_reason, run.waiting_message = (
                "waiting", "CreateContainerConfigError", str(exc))
            run.restart_at = time.monotonic() + 2
            return
        cdir = self.dir / "containers" / run.name
        cdir.mkdir(parents=True, exist_ok=True)
        term_file = cdir / "termination-log"
        term_file.write_bytes(b"")
        mount_list.append({"source": str(term_file), "read_only": False,
                           "target": spec.get("terminationMessagePath", "/dev/termination-log")})
        security = spec.get("securityContext") or {}
        launch = {"agent_pid": os.getpid(), "argv": argv, "env": env, "mounts": mount_list,
                  "read_only_root": bool(security.get("readOnlyRootFilesystem")),
                  "preserve": self.agent.code_paths, "working_dir": spec.get("workingDir", "")}
        launch_file = cdir / f"launch-{run.restart_count}.json"
        launch_file.touch(mode=0o600)
        launch_file.write_text(json.dumps(launch))
        log_path = self.dir / "logs" / f"{run.name}.log"
        with log_path.open("ab") as out:
            out.write(f"--- start {run.restart_count} at {now_rfc3339()}\n".encode())
            out.flush()
            run.proc = subprocess.Popen(
                [sys.executable, "-m", "warmstart_localcluster.nodeagent.shim", str(launch_file)],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={"PATH": env.get("PATH", os.environ.get("PATH", "")),
                     **self.agent.marker_env()},
                cwd=self.dir,
                start_new_session=True,
            )
        run.started(env)
        log.info("pod %s: started container %s (pid %s)", self.key, run.name, run.proc.pid)

    def _with_ips(self, pod: Pod) -> Pod:
        status = dict(pod.get("status") or {})
        status.update(podIP=self.ip, podIPs=[{"ip": self.ip}], hostIP="127.0.0.1",
                      hostIPs=[{"ip": "127.0.0.1"}])
        return {**pod, "status": status}

    def _mounts(self, spec: dict[str, Any]) -> list[dict[str, Any]]:
        assert self.vols is not None
        out = []
        for m in podspec.mounts(spec):
            if m.volume not in self.vols.dirs:
                raise ConfigError(f"volumeMount {m.path!r} names unknown volume {m.volume!r}")
            source = self.vols.dirs[m.volume]
            if m.sub_path:
                source = source / m.sub_path
                if not source.exists():
                    source.mkdir(parents=True)
            out.append({"source": str(source), "target": m.path, "read_only": m.read_only})
        return out

    def _reap(self, run: ContainerRun) -> bool:
        """Records the exit of a finished process; True if it exited just now."""
        if run.proc is None or run.state != "running":
            return False
        code = run.proc.poll()
        if code is None:
            return False
        if code < 0:  # killed by a signal: report it as a runtime does, 128 + signal
            code = 128 - code
        message = termination_message(self.dir, run, code)
        run.terminated = {
            "exitCode": code,
            "reason": "Completed" if code == 0 else "Error",
            "startedAt": run.started_at,
            "finishedAt": now_rfc3339(),
            "containerID": f"local://{self.uid}/{run.name}/{run.restart_count}",
        }
        if message:
            run.terminated["message"] = message
        run.state = "terminated"
        run.proc = None
        log.info("pod %s: container %s exited with %s", self.key, run.name, code)
        return True

    def _maybe_restart(self, run: ContainerRun, policy: str, pod: Pod) -> None:
        if run.state != "terminated" or run.terminated is None:
            if run.state == "waiting" and run.restart_at and time.monotonic() >= run.restart_at:
                self._launch(run, pod)
            return
        if not podspec.restart_wanted(policy, int(run.terminated["exitCode"])):
            return
        if run.restart_at is None:
            run.restart_at = time.monotonic() + podspec.crash_backoff(run.restart_count + 1)
            return
        if time.monotonic() >= run.restart_at:
            run.last_state = {"terminated": run.terminated}
            run.restart_count += 1
            run.terminated = None
            self._launch(run, pod)

    def _step_init(self, pod: Pod) -> None:
        policy = pod["spec"].get("restartPolicy", "Always")
        for run in self.inits:
            if run.state == "terminated" and run.terminated and run.terminated["exitCode"] == 0:
                continue
            if not run.launched:
                self._launch(run, pod)
                return
            self._reap(run)
            if run.state == "terminated" and run.terminated and run.terminated["exitCode"] != 0:
                # Init containers restart on failure unless the pod never restarts.
                if policy == "Never":
                    self.phase = "Failed"
                    self.reason = "InitContainerFailed"
                    return
                self._maybe_restart(run, "OnFailure", pod)
            elif run.state == "waiting":
                self._maybe_restart(run, "OnFailure", pod)
            return
        self.init_done = True
        self._set_condition("Initialized", True)

    def _step_containers(self, pod: Pod) -> None:
        policy = pod["spec"].get("restartPolicy", "Always")
        for run in self.containers:
            if not run.launched:
                self._launch(run, pod)
        for run in self.containers:
            self._reap(run)
            self._probe(run)
            self._maybe_restart(run, policy, pod)
        if self.vols:
            with contextlib.suppress(ApiException, OSError):
                volumes.refresh_tokens(self.vols, pod, self.agent.issue_token)
        states = [(r.state, r.terminated["exitCode"] if r.terminated else None)
                  for r in self.containers]
        pending_restart = any(
            r.state == "terminated" and r.terminated is not None
            and podspec.restart_wanted(policy, int(r.terminated["exitCode"]))
            for r in self.containers
        )
        self.phase = podspec.pod_phase(states, pending_restart)
        ready = bool(self.containers) and all(r.ready for r in self.containers)
        self._set_condition("ContainersReady", ready)
        self._set_condition("Ready", ready)

    def _probe(self, run: ContainerRun) -> None:
        if run.state != "running" or run.proc is None:
            return
        now = time.monotonic()
        for probe, is_liveness in ((run.readiness, False), (run.liveness, True)):
            if probe is None:
                continue
            if now < run.started_mono + probe.initial_delay or now < probe.next_at:
                continue
            probe.next_at = now + probe.period
            ok, message = probes.run_probe(
                probe.spec, run.spec, self.ip,
                ["nsenter", f"--mount=/proc/{run.proc.pid}/ns/mnt", "--"], run.env,
            )
            changed = probe.record(ok, message)
            if changed:
                log.info("pod %s: %s probe of %s now %s (%s)", self.key,
                         "liveness" if is_liveness else "readiness", run.name,
                         "passing" if probe.ok else "failing", message)
            if is_liveness and not probe.ok:
                log.info("pod %s: restarting %s after failed liveness probe", self.key, run.name)
                self._signal(run, signal.SIGKILL)

    # -- stopping ----------------------------------------------------------------------
    def _signal(self, run: ContainerRun, sig: int) -> None:
        if run.proc is not None and run.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(run.proc.pid, sig)

    def _kill_all(self, grace: float) -> None:
        running = [r for r in self.inits + self.containers if r.proc is not None]
        for run in running:
            self._signal(run, signal.SIGTERM if grace > 0 else signal.SIGKILL)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(
                r.proc is not None and r.proc.poll() is None for r in running):
            time.sleep(0.1)
        for run in running:
            self._signal(run, signal.SIGKILL)
            if run.proc is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    run.proc.wait(timeout=5)
            self._reap(run)

    def _terminate_for_deletion(self, pod: Pod) -> None:
        meta = pod["metadata"]
        grace = meta.get("deletionGracePeriodSeconds")
        if grace is None:
            grace = pod["spec"].get("terminationGracePeriodSeconds", 30)
        self._kill_all(min(float(grace), _LOCAL_GRACE_CAP))
        if self.phase not in ("Succeeded", "Failed"):
            codes = [r.terminated["exitCode"] if r.terminated else 137 for r in self.containers]
            self.phase = "Succeeded" if codes and all(c == 0 for c in codes) else "Failed"
        self._set_condition("ContainersReady", False)
        self._set_condition("Ready", False)
        self._send_status()
        with contextlib.suppress(ApiException):
            self.agent.kube.request(
                "DELETE",
                f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}",
                body={"gracePeriodSeconds": 0, "preconditions": {"uid": self.uid}},
            )
        log.info("pod %s: stopped and deleted", self.key)
        self._cleanup()

    def _cleanup(self) -> None:
        # Secrets and tokens go with the pod; logs stay for post-mortems.
        shutil.rmtree(self.dir / "volumes", ignore_errors=True)

    # -- status ------------------------------------------------------------------------
    def _set_condition(self, kind: str, value: bool) -> None:
        set_condition(self.conditions, kind, value)

    def _status(self) -> dict[str, Any]:
        return pod_status(self.phase, self.conditions, self.ip, self.start_time,
                          self.containers, self.inits, self.uid,
                          self.reason, self.message or self.config_error)

    def _send_status(self) -> None:
        status = self._status()
        encoded = json.dumps(status, sort_keys=True)
        if encoded == self._last_sent:
            return
        meta = self._current()["metadata"]
        try:
            self.agent.kube.request(
                "PATCH",
                f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}/status",
                body={"metadata": {"uid": self.uid}, "status": status},
                content_type=MERGE_PATCH,
            )
            self._last_sent = encoded
        except ApiException as exc:
            if exc.status == 404:
                self.gone = True
                return
            log.warning("pod %s: status update failed: %s %s", self.key, exc.status, exc.reason)
