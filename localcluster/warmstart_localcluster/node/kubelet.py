"""kubelet, kube-proxy and kube-scheduler of the real node, each with a config file.

Host checks are configured, not patched out: swap is allowed (failSwapOn false), cgroup
v1 is allowed (failCgroupV1 false), cgroups are driven through cgroupfs under a cgroup
root of our own (so `down` can remove them), and eviction/image GC thresholds are loose
because the disk is shared with other work on this machine.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import yaml

from warmstart_localcluster import binaries, processes
from warmstart_localcluster.node import containerd, network
from warmstart_localcluster.pki import Pki
from warmstart_localcluster.ports import free_ports

CGROUP_ROOT = "/warmstart-node"


def _cgroup_dirs() -> list[Path]:
    """CGROUP_ROOT in every hierarchy mounted here (cpu and cpuacct may be apart; the
    kubelet also makes its tree in the hybrid layout's `unified` v2 mount)."""
    base = Path("/sys/fs/cgroup")
    hierarchies = {p.resolve() for p in base.iterdir() if p.is_dir()}
    return [h / CGROUP_ROOT.strip("/") for h in sorted(hierarchies)]


def make_cgroup_root() -> None:
    for path in _cgroup_dirs():
        path.mkdir(exist_ok=True)
        if (path.parent / "cpuset.cpus").is_file():
            # A new cpuset cgroup starts with no CPUs or memory nodes; inherit the parent's.
            for name in ("cpuset.cpus", "cpuset.mems"):
                (path / name).write_text((path.parent / name).read_text())


def remove_cgroup_root() -> list[str]:
    """Removes our cgroup subtree (deepest first); returns what could not be removed."""
    left: list[str] = []
    for top in _cgroup_dirs():
        if not top.is_dir():
            continue
        for path in sorted((p for p in top.rglob("*") if p.is_dir()),
                           key=lambda p: len(p.parts), reverse=True):
            with contextlib.suppress(OSError):
                path.rmdir()
        try:
            top.rmdir()
        except OSError:
            left.append(str(top))
    return left


def start_kubelet(state_dir: Path, pki: Pki, kubeconfig: Path, node_name: str) -> int:
    base = state_dir / "kubelet"
    base.mkdir(parents=True, exist_ok=True)
    port, healthz = free_ports(2)
    config = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": network.NODE_IP,
        "port": port,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": healthz,
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(pki.ca_cert)},
        },
        "authorization": {"mode": "Webhook"},
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": CGROUP_ROOT,
        "failSwapOn": False,
        "failCgroupV1": False,
        "containerRuntimeEndpoint": f"unix://{containerd.socket(state_dir)}",
        "clusterDNS": [network.DNS_SERVICE_IP],
        "clusterDomain": "cluster.local",
        # Pods must not inherit the host's resolver: names resolve through CoreDNS only.
        "resolvConf": "",
        "enforceNodeAllocatable": [],
        "podLogsDir": str(base / "pod-logs"),
        "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%",
                         "imagefs.available": "1%"},
        "imageGCHighThresholdPercent": 99,
        "imageGCLowThresholdPercent": 98,
        "serializeImagePulls": False,
        "registerNode": True,
        "staticPodPath": "",
    }
    config_path = base / "config.yaml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    return processes.start("kubelet", [
        _bin("kubelet"),
        f"--config={config_path}",
        f"--kubeconfig={kubeconfig}",
        f"--root-dir={base / 'root'}",
        f"--cert-dir={base / 'pki'}",
        f"--node-ip={network.NODE_IP}",
        f"--hostname-override={node_name}",
        "--v=1",
    ], state_dir)


def start_kube_proxy(state_dir: Path, kubeconfig: Path, node_name: str) -> int:
    base = state_dir / "kube-proxy"
    base.mkdir(parents=True, exist_ok=True)
    healthz, metrics = free_ports(2)
    config = {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "mode": "iptables",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "hostnameOverride": node_name,
        "bindAddress": network.NODE_IP,
        "clusterCIDR": network.POD_RANGE,
        "healthzBindAddress": f"127.0.0.1:{healthz}",
        "metricsBindAddress": f"127.0.0.1:{metrics}",
        # NodePorts only on the bridge address, never on the machine's own interfaces.
        "nodePortAddresses": [f"{network.NODE_IP}/32"],
        # Leave the machine's conntrack table sizes and timeouts alone (0 = do not set).
        "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s",
                      "tcpCloseWaitTimeout": "0s"},
    }
    config_path = base / "config.yaml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    return processes.start("kube-proxy", [_bin("kube-proxy"), f"--config={config_path}", "--v=1"],
                           state_dir)


def start_scheduler(state_dir: Path, kubeconfig: Path) -> int:
    (port,) = free_ports(1)
    return processes.start("kube-scheduler", [
        _bin("kube-scheduler"),
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        "--leader-elect=false",
        "--bind-address=127.0.0.1",
        f"--secure-port={port}",
        "--v=1",
    ], state_dir)


def _bin(name: str) -> str:
    return str(binaries.ensure(name))
