"""Which node runs the test cluster's pods, and the few things that changes for the tests.

`WARMSTART_TEST_NODE` picks it (scripts/test.sh passes the environment through):

- `agent` (default): the project's node agent runs each pod as a process of this Python
  environment. Image names are ignored, pod addresses are 127.N.x.y, logs are files under
  the cluster's state dir. Each pytest-xdist worker starts a cluster of its own.
- `kubelet`: a real node (containerd + runc, `warmstart-cluster up --node kubelet`) runs
  the pods from the images scripts/build-images made. Root only, and one real node per
  machine (fixed bridge and ranges, one image store): every worker attaches to ONE session
  cluster, which the run starts once and stops at its end. Hold the machine-wide lock:
  `flock /tmp/warmstart-realnode.lock scripts/test.sh -m cluster`.

The profile of a running cluster is read from the cluster itself (its real-node marker), so
a cluster attached with WARMSTART_TEST_STATE gets the right one too.
"""

from __future__ import annotations

import ipaddress
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from warmstart.demo import realnode as demo_realnode
from warmstart.demo.errors import DemoError
from warmstart_localcluster.realnode import network

ENV = "WARMSTART_TEST_NODE"
KINDS = ("agent", "kubelet")
TRAINER_IMAGE = demo_realnode.TRAINER_IMAGE
# What tests write where a pod needs an image on the node agent (which ignores it).
AGENT_IMAGE = "local"


def requested() -> str:
    """The node kind this test run asked for."""
    kind = os.environ.get(ENV, "agent") or "agent"
    if kind not in KINDS:
        raise pytest.UsageError(f"{ENV}={kind!r}: expected one of {', '.join(KINDS)}")
    return kind


def shares_one_cluster(kind: str) -> bool:
    """Whether every xdist worker attaches to one session cluster instead of its own.
    A real node exists once per machine; the node agent keeps one cluster per worker as
    before (see conftest.cluster for why)."""
    return kind == "kubelet"


def check_images() -> None:
    """A real node runs only images that were built here: fail early, naming the fix."""
    try:
        demo_realnode.check_images()
    except DemoError as exc:  # says which image is missing and how to build it
        pytest.fail(f"{ENV}=kubelet: {exc}", pytrace=False)


def agent_only(why: str) -> pytest.MarkDecorator:
    """Skips, in the real-node run, a test that starts node-agent clusters of its own (or
    none) and so checks nothing a real node changes; `why` says what it needs instead."""
    return pytest.mark.skipif(requested() == "kubelet", reason=f"{ENV}=kubelet: {why}")


@dataclass(frozen=True)
class NodeProfile:
    """What differs between the node agent and a real node, in one place."""

    kind: str

    @staticmethod
    def of(state_dir: Path) -> NodeProfile:
        return NodeProfile("kubelet" if demo_realnode.is_real_node(state_dir) else "agent")

    @property
    def real(self) -> bool:
        return self.kind == "kubelet"

    def image(self, on_agent: str = AGENT_IMAGE) -> str:
        """The image of a pod a test makes: on a real node the trainer image (Python 3.11,
        the trainer's packages, non-root); the node agent ignores it, so `on_agent` stays
        whatever the test wrote before."""
        return TRAINER_IMAGE if self.real else on_agent

    @property
    def pod_network(self) -> ipaddress.IPv4Network:
        """Where pod addresses come from: loopback ranges, or the real node's pod subnet."""
        return ipaddress.IPv4Network(network.POD_SUBNET if self.real else "127.0.0.0/8")

    @property
    def host_ip(self) -> str:
        """The node's own address, which no pod gets."""
        return network.NODE_IP if self.real else "127.0.0.1"

    def operator_env(self) -> dict[str, str]:
        """The trainer settings of an operator the tests start as a local process: the node
        agent runs the trainer from this venv; a real node runs the trainer image (imported
        into the node, so the Job's IfNotPresent pull finds it)."""
        if self.real:
            return {"WARMSTART_TRAINER_IMAGE": TRAINER_IMAGE}
        return {"WARMSTART_TRAINER_COMMAND": f"{sys.executable} -m warmstart_trainer"}

    def chart_values(self) -> list[str]:
        """`--set` arguments for the chart: on a real node, the images built here."""
        if not self.real:
            return []
        return [arg for value in demo_realnode.helm_values() for arg in ("--set", value)]

    def pod_log(self, kubectl: list[str], state_dir: Path, namespace: str, pod: str) -> str:
        """Every container's log of the pod (empty while it has none)."""
        if self.real:
            done = subprocess.run([*kubectl, "logs", "-n", namespace, pod, "--all-containers",
                                   "--tail=-1"], capture_output=True, text=True, timeout=60,
                                  check=False)
            return done.stdout
        found = sorted((state_dir / "pods").glob(f"{namespace}_{pod}_*/logs/*.log"))
        return "\n".join(p.read_text(errors="replace") for p in found)

    def skip_unless_agent(self, why: str) -> None:
        """Skips a test that checks something only the node agent has; `why` names it."""
        if self.real:
            pytest.skip(f"node-agent only ({ENV}=kubelet): {why}")
