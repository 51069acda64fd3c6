"""The node agent: plays kubelet (and the scheduler's bind) for one local Node.

It registers the Node and keeps its Ready condition and Lease fresh, binds pending pods
that fit, and runs a PodWorker thread per pod bound here. What it does not do: pod
networking beyond loopback (each pod gets its own 127.x.y.z address, pods reach each other
and the API server directly; there are no Services, kube-proxy or DNS), images (the image
name is ignored; the command runs with the project's Python environment), resource limits,
startup probes, `kubectl logs/exec` (no kubelet API; logs are files under the state dir).
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import logging
import os
import platform
import signal
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from warmstart_localcluster import paths
from warmstart_localcluster.nodeagent import podaddresses, podspec
from warmstart_localcluster.nodeagent.containerrun import now_rfc3339
from warmstart_localcluster.nodeagent.kube import MERGE_PATCH, ApiException, Kube
from warmstart_localcluster.nodeagent.podworker import PodWorker
from warmstart_localcluster.nodeagent.volumes import object_data
from warmstart_localcluster.processes import MARKER_ENV

log = logging.getLogger("nodeagent")

_IMAGE_ENV_PASSTHROUGH = ("LANG", "LC_ALL", "TZ", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
                          "SSL_CERT_FILE", "HF_HUB_OFFLINE")


class Agent:
    def __init__(self, kubeconfig: str, state_dir: Path, node_name: str, apiserver: str) -> None:
        self.kube = Kube(kubeconfig)
        self.state_dir = state_dir
        self.pods_dir = state_dir / "pods"
        self.pods_dir.mkdir(parents=True, exist_ok=True)
        self.node_name = node_name
        self.apiserver = apiserver
        self.workers: dict[str, PodWorker] = {}
        self._lock = threading.Lock()
        self._ips: dict[str, str] = {}
        self._stop = threading.Event()
        self.code_paths = _code_paths()
        self.ip_octet, self._octet_claim = podaddresses.claim_octet(
            state_dir, paths.cache_dir() / "pod-address-ranges")
        cpus = str(os.cpu_count() or 1)
        mem_kib = _memory_kib()
        self.allocatable: dict[str, str] = {
            "cpu": cpus, "memory": f"{mem_kib}Ki", "pods": "250",
            "ephemeral-storage": "100Gi",
        }
        self.labels = {
            "kubernetes.io/hostname": node_name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            "node.kubernetes.io/instance-type": "warmstart-local",
        }

    # -- node --------------------------------------------------------------------------
    def register(self) -> None:
        body = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": self.node_name, "labels": self.labels},
        }
        try:
            self.kube.request("POST", "/api/v1/nodes", body=body)
            log.info("registered node %s", self.node_name)
        except ApiException as exc:
            if exc.status != 409:
                raise
        self._node_status()

    def _node_status(self) -> None:
        now = now_rfc3339()

        def cond(kind: str, status: str, reason: str, message: str) -> dict[str, str]:
            return {"type": kind, "status": status, "reason": reason, "message": message,
                    "lastHeartbeatTime": now, "lastTransitionTime": self._started}

        status = {
            "capacity": self.allocatable,
            "allocatable": self.allocatable,
            "conditions": [
                cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "ok"),
                cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "ok"),
                cond("PIDPressure", "False", "KubeletHasSufficientPID", "ok"),
                cond("Ready", "True", "KubeletReady", "warmstart local node agent is ready"),
            ],
            "addresses": [
                {"type": "InternalIP", "address": "127.0.0.1"},
                {"type": "Hostname", "address": self.node_name},
            ],
            "nodeInfo": {
                "machineID": "warmstart-local", "systemUUID": "warmstart-local",
                "bootID": str(os.getpid()), "kernelVersion": platform.release(),
                "osImage": "warmstart local node", "containerRuntimeVersion": "local://0.1",
                "kubeletVersion": "v1.34.4", "kubeProxyVersion": "", "operatingSystem": "linux",
                "architecture": "amd64",
            },
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 0}},
        }
        self.kube.request("PATCH", f"/api/v1/nodes/{self.node_name}/status",
                          body={"status": status}, content_type=MERGE_PATCH)
        self._renew_lease()

    def _renew_lease(self) -> None:
        micro = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        path = f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{self.node_name}"
        body = {"spec": {"holderIdentity": self.node_name, "leaseDurationSeconds": 40,
                         "renewTime": micro}}
        try:
            self.kube.request("PATCH", path, body=body, content_type=MERGE_PATCH)
        except ApiException as exc:
            if exc.status != 404:
                raise
            self.kube.request(
                "POST", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases",
                body={"metadata": {"name": self.node_name}, **body})

    def _heartbeat(self) -> None:
        while not self._stop.wait(10):
            try:
                self._node_status()
            except Exception as exc:  # keep beating: the API server may be restarting
                log.warning("node heartbeat failed: %s", exc)

    # -- what pods see ----------------------------------------------------------------
    def marker_env(self) -> dict[str, str]:
        return {MARKER_ENV: str(self.state_dir)}

    def image_env(self, pod: podspec.Pod) -> dict[str, str]:
        """The environment an image would bring, plus what kubelet adds for every pod."""
        host, _, port = self.apiserver.removeprefix("https://").partition(":")
        venv_bin = str(Path(sys.executable).parent)
        env = {
            "PATH": f"{venv_bin}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(self.pods_dir / "home"),
            "HOSTNAME": pod["metadata"]["name"],
            "PYTHONUNBUFFERED": "1",
            "KUBERNETES_SERVICE_HOST": host,
            "KUBERNETES_SERVICE_PORT": port,
            "KUBERNETES_SERVICE_PORT_HTTPS": port,
            "KUBERNETES_PORT": f"tcp://{host}:{port}",
            **self.marker_env(),
        }
        for key in _IMAGE_ENV_PASSTHROUGH:
            if key in os.environ:
                env[key] = os.environ[key]
        return env

    def lookup_raw(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        plural = "secrets" if kind == "secret" else "configmaps"
        return self.kube.get(f"/api/v1/namespaces/{namespace}/{plural}/{name}")

    def lookup_data(self, kind: str, namespace: str, name: str) -> Mapping[str, str] | None:
        obj = self.lookup_raw(kind, namespace, name)
        if obj is None:
            return None
        return {k: v.decode(errors="replace") for k, v in object_data(kind, obj).items()}

    def issue_token(
        self, namespace: str, account: str, audiences: list[str], seconds: int, pod: podspec.Pod
    ) -> tuple[str, float]:
        body: dict[str, Any] = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {
                "expirationSeconds": seconds,
                "boundObjectRef": {"kind": "Pod", "apiVersion": "v1",
                                   "name": pod["metadata"]["name"],
                                   "uid": pod["metadata"]["uid"]},
            },
        }
        if audiences:
            body["spec"]["audiences"] = audiences
        result = self.kube.request(
            "POST", f"/api/v1/namespaces/{namespace}/serviceaccounts/{account}/token", body=body)
        expires = dt.datetime.strptime(
            result["status"]["expirationTimestamp"], "%Y-%m-%dT%H:%M:%SZ"
        ).replace(tzinfo=dt.UTC).timestamp()
        return str(result["status"]["token"]), expires

    def allocate_ip(self, uid: str) -> str:
        with self._lock:
            if uid in self._ips:
                return self._ips[uid]
            used = set(self._ips.values())
            # 127.0.0.0/16 stays free for the components. Each cluster (state dir) gets its
            # own second octet, so two local clusters on one host never hand out the same
            # pod address.
            octet = self.ip_octet
            for n in range(1, 64516):
                ip = f"127.{octet}.{(n // 254) % 254}.{1 + n % 254}"
                if ip not in used:
                    self._ips[uid] = ip
                    return ip
        raise RuntimeError("no free pod address")

    def release_ip(self, uid: str) -> None:
        with self._lock:
            self._ips.pop(uid, None)

    def forget(self, uid: str) -> None:
        with self._lock:
            self.workers.pop(uid, None)

    # -- pods -------------------------------------------------------------------------
    def _bind(self, pod: podspec.Pod) -> None:
        meta = pod["metadata"]
        reason = podspec.fits_node(pod, self.labels, self.allocatable)
        ns, name = meta["namespace"], meta["name"]
        if reason:
            conditions = pod.get("status", {}).get("conditions", [])
            if any(c.get("type") == "PodScheduled" and c.get("message") == reason
                   for c in conditions):
                return
            self.kube.request(
                "PATCH", f"/api/v1/namespaces/{ns}/pods/{name}/status", content_type=MERGE_PATCH,
                body={"status": {"conditions": [{
                    "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                    "message": f"0/1 nodes are available: {reason}",
                    "lastTransitionTime": now_rfc3339(), "lastProbeTime": None}]}},
            )
            return
        body = {
            "apiVersion": "v1", "kind": "Binding",
            "metadata": {"name": name, "namespace": ns, "uid": meta["uid"]},
            "target": {"apiVersion": "v1", "kind": "Node", "name": self.node_name},
        }
        try:
            self.kube.request("POST", f"/api/v1/namespaces/{ns}/pods/{name}/binding", body=body)
            log.info("pod %s/%s: bound to %s", ns, name, self.node_name)
        except ApiException as exc:
            if exc.status not in (404, 409):
                raise

    def handle(self, kind: str, pod: podspec.Pod) -> None:
        meta = pod.get("metadata", {})
        uid = meta.get("uid")
        if not uid:
            return
        node = pod.get("spec", {}).get("nodeName")
        if kind == "DELETED":
            with self._lock:
                worker = self.workers.get(uid)
            if worker:
                worker.deleted()
            return
        if not node:
            if pod.get("status", {}).get("phase") in (None, "Pending") and not meta.get(
                    "deletionTimestamp"):
                self._bind(pod)
            return
        if node != self.node_name:
            return
        with self._lock:
            worker = self.workers.get(uid)
            if worker is None:
                if pod.get("status", {}).get("phase") in ("Succeeded", "Failed") and not meta.get(
                        "deletionTimestamp"):
                    return  # finished before this agent started: nothing left to run
                worker = PodWorker(self, pod)
                self.workers[uid] = worker
                worker.start()
                return
        worker.update(pod)

    def run(self) -> None:
        self._started = now_rfc3339()
        self.register()
        threading.Thread(target=self._heartbeat, name="heartbeat", daemon=True).start()
        while not self._stop.is_set():
            try:
                listing = self.kube.request("GET", "/api/v1/pods")
                seen = set()
                for pod in listing.get("items", []):
                    seen.add(pod["metadata"]["uid"])
                    self.handle("ADDED", pod)
                with self._lock:
                    vanished = [w for uid, w in self.workers.items() if uid not in seen]
                for worker in vanished:
                    worker.deleted()
                version = listing["metadata"]["resourceVersion"]
                for kind, pod in self.kube.watch_pods(version, timeout_seconds=60):
                    if self._stop.is_set():
                        break
                    if kind in ("ADDED", "MODIFIED", "DELETED"):
                        self.handle(kind, pod)
            except Exception as exc:
                if self._stop.is_set():
                    break
                log.warning("pod watch interrupted (%s); listing again", exc)
                time.sleep(1)

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            workers = list(self.workers.values())
        for worker in workers:
            worker.deleted()
        for worker in workers:
            worker.join(timeout=15)


def _code_paths() -> list[str]:
    """What stands in for the image: the Python environment and the project checkout.

    Pods must see these even when a volume is mounted above them (an emptyDir at /tmp
    while the checkout lives under /tmp, say)."""
    paths = {sys.prefix, sys.base_prefix}
    for name in ("warmstart", "warmstart_trainer", "warmstart_operator",
                 "warmstart_localcluster"):
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.origin:
            paths.add(str(Path(spec.origin).resolve().parent.parent))
    return sorted(p for p in paths if Path(p).is_dir())


def _memory_kib() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 8 * 1024 * 1024


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="warmstart-node-agent")
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--state-dir", required=True, type=Path)
    parser.add_argument("--node-name", required=True)
    parser.add_argument("--apiserver", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(threadName)s %(message)s")
    agent = Agent(args.kubeconfig, args.state_dir, args.node_name, args.apiserver)

    def on_term(signum: int, frame: object) -> None:
        log.info("node agent stopping (signal %s): stopping every pod", signum)
        def stop_and_exit() -> None:
            agent.stop()
            os._exit(0)

        threading.Thread(target=stop_and_exit, daemon=True).start()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    agent.run()

