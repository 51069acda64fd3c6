"""`scripts/demo.sh --quick --node kubelet`: the quick demo on the opt-in real node.

Opt-in (WARMSTART_REALNODE=1): needs root, scripts/ensure-host-packages.sh and
scripts/build-images. The demo brings up a real-node cluster of its own state dir, installs
the operator with the chart from the operator image, trains in trainer-image pods, serves
from the trainer image behind a ClusterIP Service, asks for its predictions through the
Service's DNS name from a pod and follows the trainers' logs through `kubectl logs`. The
story's outcome is checked exactly as on the node agent (tests/demo/test_demo_quick.py),
then what only a real node can show; `down` leaves the host as it was.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.demo.test_demo_quick import assert_story_outcome, kubectl_json, run_demo
from tests.localcluster.realnode_gate import REALNODE
from warmstart.demo import manifests as m
from warmstart.demo import realnode as demo_node
from warmstart_localcluster import cluster, paths, processes
from warmstart_localcluster.realnode import containerd, network

pytestmark = [*REALNODE, pytest.mark.slow, pytest.mark.timeout(3600)]


@pytest.fixture
def state_dir() -> Iterator[Path]:
    before = network.snapshot()
    state = paths.cache_dir() / "realnode-demo"
    cluster.down(state)  # an earlier, interrupted run's
    try:
        yield state
    finally:
        cluster.down(state)
        assert network.snapshot() == before
        assert containerd.mounts_under(state) == []
        assert processes.marked_pids(state) == []


def images_of(info: cluster.ClusterInfo, selector: str) -> set[str]:
    """The images of the pods with that label, in any namespace."""
    pods: dict[str, Any] = kubectl_json(info, "get", "pods", "-A", "-l", selector)
    return {c["image"] for p in pods["items"] for c in p["spec"]["containers"]}


def test_quick_demo_on_a_real_node(state_dir: Path) -> None:
    started = time.monotonic()
    out = run_demo(state_dir, "--node", "kubelet")
    # Shown by pytest when a check below fails (and with -s).
    print(out, f"\nquick demo on the real node: {time.monotonic() - started:.0f} s")
    assert_story_outcome(state_dir)

    assert "(a real node: kubelet, containerd, runc)" in out
    # The predictions went through the Service's DNS name, from a pod.
    service = f"http://{m.DEPLOYMENT}.reviews.svc.cluster.local/v2/models/"
    assert f"kubectl run {demo_node.PREDICT_POD}" in out and service in out, out[-4000:]
    assert "answered by model version reviews-week1" in out
    # The trainers' lines came through `kubectl logs`.
    assert f"(log: kubectl logs -n reviews {m.WEEK1}-train-" in out, out[-4000:]
    assert f"committed version {m.WEEK1}" in out, out[-4000:]
    assert "7. Tampering" in out and "the server never reports ready" in out
    summary = json.loads((state_dir / "demo" / "summary.json").read_text())
    assert summary["node"] == "kubelet"

    info = cluster.ClusterInfo.load(state_dir)
    assert images_of(info, "app.kubernetes.io/component=operator") == {
        demo_node.OPERATOR_IMAGE}
    assert images_of(info, f"app={m.DEPLOYMENT}") == {demo_node.TRAINER_IMAGE}
    jobs = kubectl_json(info, "get", "jobs")
    assert {c["image"] for j in jobs["items"]
            for c in j["spec"]["template"]["spec"]["containers"]} == {demo_node.TRAINER_IMAGE}
    endpoints = kubectl_json(info, "get", "endpoints", m.DEPLOYMENT)
    assert endpoints["subsets"][0]["addresses"], endpoints
