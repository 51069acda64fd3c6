"""The local cluster's node: a real one, as on any cluster.

containerd + runc run the pods, kubelet/kube-proxy/kube-scheduler at the API server's
version, CNI bridge networking that exists only on this machine, CoreDNS for names. It
needs root and the Debian packages that scripts/ensure-host-packages.sh installs, and
there is one per machine (fixed bridge, address ranges and image store).

`MARKER` in the state dir says a real node may have left host state behind (network,
mounts, cgroups); `cleanup()` removes all of it and is safe to run any number of times.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import time
from pathlib import Path

from warmstart_localcluster import kubeconfig, processes
from warmstart_localcluster.errors import ClusterError
from warmstart_localcluster.node import (
    containerd,
    coredns,
    images,
    kubelet,
    network,
    registry,
)
from warmstart_localcluster.pki import Pki

# The file name an earlier release wrote too: its clusters' host state is cleaned up alike.
MARKER = "realnode"
NODE_IP = network.NODE_IP
_HOST_TOOLS = ("containerd", "containerd-shim-runc-v2", "runc", "ctr", "iptables", "ip",
               "buildah")


def check_host() -> None:
    if os.geteuid() != 0:
        raise ClusterError("the local cluster's node needs root (containers, bridge, iptables)")
    missing = [t for t in _HOST_TOOLS if shutil.which(t) is None]
    if not Path("/usr/lib/cni/bridge").is_file():
        missing.append("containernetworking-plugins")
    if missing:
        raise ClusterError(
            f"missing {', '.join(missing)}: run scripts/ensure-host-packages.sh first"
        )


def present(state_dir: Path) -> bool:
    """The cluster at state_dir has a real node, or left its host state behind (the marker
    goes only when cleanup() has removed all of it)."""
    return (state_dir / MARKER).exists()


def prepare(state_dir: Path) -> None:
    """Host networking first: the API server listens on the node's bridge address."""
    # Network first: it refuses when another real node holds it, and the marker must not
    # make this cluster's `down` tear down the other's network.
    network.setup(state_dir)
    (state_dir / MARKER).touch()


def start(state_dir: Path, pki: Pki, apiserver: str, kubectl: Path, node_name: str,
          timeout: float) -> None:
    """Starts containerd, loads images, starts kubelet, kube-proxy, scheduler, CoreDNS."""
    kubelet.make_cgroup_root()
    network.write_cni_config(containerd.cni_conf_dir(state_dir))
    containerd.start(state_dir, timeout)
    containerd.remove_containers(state_dir)
    images.load_system_images(state_dir)
    registry.write_hosts(containerd.hosts_dir(state_dir), registry.start(state_dir))
    # The project's images are pulled now, so the first pod does not wait for 6 GB and a
    # changed `dev` tag is current on the node; unchanged layers are not fetched again.
    for ref in registry.pushed():
        started = time.monotonic()
        print(f"==> pulling {ref} (the layers the node lacks)", file=sys.stderr, flush=True)
        containerd.pull(state_dir, ref)
        print(f"==> {ref} on the node after {time.monotonic() - started:.1f}s", file=sys.stderr,
              flush=True)
    dropped = containerd.prune_images(state_dir)
    if dropped:
        print(f"==> dropped {len(dropped)} replaced image(s) from the node", file=sys.stderr,
              flush=True)
    configs = {}
    for client in ("kubelet", "kube-proxy", "kube-scheduler"):
        configs[client] = state_dir / f"{client}.kubeconfig"
        kubeconfig.write(configs[client], apiserver, pki, client)
    kubelet.start_kubelet(state_dir, pki, configs["kubelet"], node_name)
    kubelet.start_kube_proxy(state_dir, configs["kube-proxy"], node_name)
    kubelet.start_scheduler(state_dir, configs["kube-scheduler"])
    coredns.apply(kubectl, state_dir / "kubeconfig")


def stop_workloads(state_dir: Path) -> None:
    """Stops the kubelet, then every container, while containerd can still tidy up."""
    if not (state_dir / MARKER).exists():
        return
    for name in ("kubelet", "kube-proxy", "kube-scheduler"):
        _stop_named(state_dir, name)
    containerd.stop_pods(state_dir)
    if containerd.socket(state_dir).exists():
        containerd.remove_containers(state_dir)


def cleanup(state_dir: Path) -> None:
    """After every process is gone: mounts, network namespaces, network, cgroups."""
    if not (state_dir / MARKER).exists():
        return
    containerd.stop_pods(state_dir)
    containerd.sweep(state_dir)
    network.teardown(state_dir)
    left = kubelet.remove_cgroup_root()
    if left or containerd.mounts_under(state_dir):
        raise ClusterError(f"real node left behind: {left + containerd.mounts_under(state_dir)}")
    (state_dir / MARKER).unlink()


def _stop_named(state_dir: Path, name: str, grace: float = 10.0) -> None:
    pids = [pid for pid in processes.marked_pids(state_dir) if _comm(pid) == name[:15]]
    for pid in pids:
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(processes.is_alive(p) for p in pids):
        time.sleep(0.1)
    for pid in pids:
        if processes.is_alive(pid):
            os.kill(pid, signal.SIGKILL)


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""
