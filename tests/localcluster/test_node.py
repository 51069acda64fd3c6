"""The real node: containerd, runc and the kubelet run pods from images built here.

On the session cluster, in a namespace of this module's own (per test worker). That `down`
leaves the host as it was is checked where a test owns the cluster it stops
(tests/localcluster/test_lifecycle.py, tests/test_readme.py, tests/demo).

Nothing here sends a packet off the machine: that packets would be dropped is checked on
the route tables only.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TRAINER_IMAGE, LocalCluster, wait_for
from warmstart_localcluster import cluster as localcluster
from warmstart_localcluster import processes
from warmstart_localcluster.errors import ClusterError
from warmstart_localcluster.node import network

# Each test worker that runs one of these tests makes the module's namespace.
NS = f"node-{uuid.uuid4().hex[:8]}"
MEMORY_LIMIT = 256 * 1024 * 1024
# A documentation address (TEST-NET-2): only looked up in route tables, never sent to.
OFF_MACHINE = "198.51.100.7"


@pytest.fixture(scope="module")
def node(cluster: LocalCluster) -> Iterator[LocalCluster]:
    cluster.kubectl("create", "namespace", NS)
    wait_for("the default service account",
             lambda: cluster.kubectl("-n", NS, "get", "serviceaccount", "default",
                                     check=False).returncode == 0)
    yield cluster
    cluster.kubectl("delete", "namespace", NS, "--wait=false", check=False)


def secure_pod(name: str, script: str, labels: dict[str, str] | None = None,
               restart: str = "Never") -> dict[str, Any]:
    """A pod as the operator makes trainer pods: every restriction the security model names."""
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": NS, "labels": labels or {}},
        "spec": {
            "restartPolicy": restart,
            "automountServiceAccountToken": False,
            "securityContext": {"runAsNonRoot": True,
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "main",
                "image": TRAINER_IMAGE,
                "imagePullPolicy": "IfNotPresent",
                "command": ["/bin/sh", "-c", script],
                # Python needs a writable temp dir; the root filesystem is read-only.
                "env": [{"name": "TMPDIR", "value": "/work"}],
                "resources": {"limits": {"memory": str(MEMORY_LIMIT), "cpu": "500m"}},
                "securityContext": {"readOnlyRootFilesystem": True,
                                    "allowPrivilegeEscalation": False,
                                    "capabilities": {"drop": ["ALL"]}},
                "volumeMounts": [{"name": "work", "mountPath": "/work"}],
            }],
            "volumes": [{"name": "work", "emptyDir": {}}],
        },
    }


def log_when_done(node: LocalCluster, pod: str) -> str:
    """The pod's log once it has run to its end (either way)."""
    wait_for(f"pod {pod}", lambda: node.pod_phase(NS, pod) in {"Succeeded", "Failed"},
             timeout=300)
    return node.kubectl("-n", NS, "logs", pod).stdout


def test_the_node_is_ready_at_the_api_servers_version(node: LocalCluster) -> None:
    got = json.loads(node.kubectl("get", "node", node.info.node, "-o", "json").stdout)
    ready = {c["type"]: c["status"] for c in got["status"]["conditions"]}["Ready"]
    assert ready == "True"
    assert got["status"]["nodeInfo"]["kubeletVersion"] == "v1.34.4"
    assert got["status"]["nodeInfo"]["containerRuntimeVersion"].startswith("containerd://")
    assert got["status"]["addresses"][0]["address"] == network.NODE_IP


def test_a_trainer_pod_runs_under_every_restriction(node: LocalCluster) -> None:
    script = (
        "echo uid=$(id -u); grep -E '^(CapEff|Seccomp):' /proc/self/status; "
        "echo limit=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes); "
        "[ -e /var/run/secrets/kubernetes.io/serviceaccount/token ] && echo token=yes; "
        "touch /probe 2>/dev/null || echo rootfs=read-only; "
        "python -m warmstart_trainer --help >/dev/null && echo trainer=ok; "
        "echo route=$(awk '$2 == \"00000000\" {print $3}' /proc/net/route)"
    )
    node.apply(secure_pod("secure", script))
    log = log_when_done(node, "secure")
    assert node.pod_phase(NS, "secure") == "Succeeded", log
    lines = dict(line.replace(":\t", "=").split("=", 1) for line in log.splitlines())
    assert lines["uid"] == "10001"  # the image's user; the pod never named one
    assert lines["CapEff"] == "0000000000000000"
    assert lines["Seccomp"] == "2"  # filter mode: the runtime's default profile
    assert int(lines["limit"]) == MEMORY_LIMIT
    assert "token" not in lines
    assert lines["rootfs"] == "read-only"
    assert lines["trainer"] == "ok"
    # The pod's only way out is the node's bridge address (little-endian hex in /proc).
    assert lines["route"] == "0100F40A"


@pytest.fixture(scope="module")
def web(node: LocalCluster) -> str:
    """A web server pod behind the Service `web`, running; its pod IP."""
    node.apply(
        secure_pod("web", "cd /work && echo served > index.html && "
                          "exec python -m http.server 8080", labels={"app": "web"},
                   restart="Always"),
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": NS},
         "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}},
    )
    wait_for("pod web", lambda: node.pod_phase(NS, "web") == "Running", timeout=300)
    return str(json.loads(node.kubectl("-n", NS, "get", "pod", "web", "-o", "json").stdout)[
        "status"]["podIP"])


def test_a_service_is_reached_by_its_dns_name_from_another_pod(
    node: LocalCluster, web: str,
) -> None:
    fetch = (
        "python -c \"import time, urllib.request\n"
        "for _ in range(60):\n"
        "    try:\n"
        f"        print(urllib.request.urlopen('http://web.{NS}.svc.cluster.local/').read()"
        ".decode()); break\n"
        "    except OSError as exc: print('retry', exc); time.sleep(1)\""
    )
    node.apply(secure_pod("client", fetch))
    log = log_when_done(node, "client")
    assert log.strip().splitlines()[-1] == "served", log


def test_packets_to_addresses_off_the_machine_are_dropped(web: str) -> None:
    pod_ip = web
    # What the kernel would do with a pod's packet to the outside, and with a host packet
    # to an unserved pod or Service address: drop it (route type blackhole).
    routed = subprocess.run(
        ["ip", "route", "get", OFF_MACHINE, "from", pod_ip, "iif", network.BRIDGE],
        capture_output=True, text=True, check=False,
    )
    assert routed.returncode != 0 or routed.stdout.startswith("blackhole"), routed.stdout
    for address in ("10.244.9.9", "10.0.0.200"):
        out = subprocess.run(["ip", "route", "get", address], capture_output=True,
                             text=True, check=False)
        assert out.returncode != 0 or out.stdout.startswith("blackhole"), out.stdout
    # Pod-to-pod on the bridge is still routed normally.
    local = subprocess.run(["ip", "route", "get", pod_ip, "from", network.NODE_IP],
                           capture_output=True, text=True, check=True).stdout
    assert f"dev {network.BRIDGE}" in local


def test_a_second_real_node_does_not_take_over_the_network(
    node: LocalCluster, own_cluster_state: Path
) -> None:
    with pytest.raises(ClusterError, match="another real node"):
        localcluster.up(own_cluster_state)
    # The refused `up` stopped what it had started, and left the session's node alone.
    assert processes.marked_pids(own_cluster_state.resolve()) == []
    assert network.owner() == node.info.state_dir
    test_the_node_is_ready_at_the_api_servers_version(node)  # and still serves
