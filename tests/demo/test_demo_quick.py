"""`scripts/demo.sh --quick` end to end against a cluster state directory of its own, then
again up to its first warm start: the story's outcome is checked on the live cluster and in
storage, not in the demo's printout; then what the real node shows (the operator, server
and Job pods run the images built here, the Service has endpoints, predictions went through
its DNS name from a pod, trainer lines through `kubectl logs`); the second run (with --down)
shows a re-run needs no cleaning up by hand, and `down` leaves the host as it was.

`own_node`: the demo starts its own cluster, so scripts/test.sh runs it after the session
cluster is down (one real node per machine)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import readme
from warmstart.demo import manifests as m
from warmstart.demo import workloads as demo_workloads
from warmstart.demo.cli import NAMESPACE
from warmstart_localcluster import cluster as localcluster
from warmstart_localcluster import processes
from warmstart_localcluster.node import containerd, network

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.own_node, pytest.mark.timeout(3600)]


@pytest.fixture
def state_dir(own_cluster_state: Path) -> Iterator[Path]:
    before = network.snapshot()
    yield own_cluster_state
    localcluster.down(own_cluster_state)
    assert network.snapshot() == before
    assert containerd.mounts_under(own_cluster_state) == []
    assert processes.marked_pids(own_cluster_state) == []


def run_demo(state_dir: Path, *args: str) -> str:
    env = {**os.environ, "WARMSTART_STATE": str(state_dir)}
    done = subprocess.run(["bash", "scripts/demo.sh", "--quick", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=3000, check=False)
    assert done.returncode == 0, f"{done.stdout[-6000:]}\n--- stderr\n{done.stderr[-3000:]}"
    return done.stdout


def kubectl_json(info: localcluster.ClusterInfo, *args: str) -> dict[str, Any]:
    done = subprocess.run([info.kubectl, f"--kubeconfig={info.kubeconfig}", "-n", NAMESPACE,
                           *args, "-o", "json"], capture_output=True, text=True, check=True)
    found: dict[str, Any] = json.loads(done.stdout)
    return found


def assert_story_outcome(state_dir: Path) -> None:
    info = localcluster.status(state_dir)
    assert info is not None, "the demo must leave the cluster up without --down"
    lineage = kubectl_json(info, "get", "modellineage", m.LINEAGE)
    phases = {v["name"]: v["phase"] for v in lineage["status"]["versions"]}
    # The cold baseline passes through the gate too: worse than what serves, it is
    # Rejected; never Promoted (promotion: Never).
    assert phases.pop(m.WEEK2_COLD) in ("Candidate", "Rejected")
    assert phases == {
        "base": "Promoted",  # version 0 counts as promoted: the first parent
        m.WEEK1: "Promoted",
        m.WEEK2: "Promoted",
        m.MISLABELLED: "Rejected",
    }
    parents = {v["name"]: v.get("parent") for v in lineage["status"]["versions"]}
    assert parents[m.WEEK2] == m.WEEK1 and parents[m.MISLABELLED] == m.WEEK2
    # The GitOps rollback: pinned to week 1, and the Deployment runs it.
    assert lineage["spec"]["pinnedVersion"] == m.WEEK1
    assert lineage["status"]["servingVersion"] == m.WEEK1
    deployment = kubectl_json(info, "get", "deployment", m.DEPLOYMENT)
    env = {e["name"]: e.get("value") for e in
           deployment["spec"]["template"]["spec"]["containers"][0].get("env", [])}
    assert env["WARMSTART_MODEL_URI"].endswith(f"/{m.WEEK1}/")
    # Each job's recorded result.
    for name, phase in ((m.WEEK1, "Succeeded"), (m.WEEK2, "Succeeded"),
                        (m.MISLABELLED, "Rejected")):
        assert kubectl_json(info, "get", "warmstartjob", name)["status"]["phase"] == phase
    week2 = kubectl_json(info, "get", "warmstartjob", m.WEEK2)["status"]
    assert len(week2["metrics"]["replay"]) == 2  # week 1's eval set joined the replay sets

    # The hash chain from week 2 to the base verifies, checked here with the CLI itself.
    verify = subprocess.run(
        [str(Path(sys.executable).parent / "warmstart"),
         "lineage", "verify", m.LINEAGE, m.WEEK2, "-n", NAMESPACE,
         "--kubeconfig", info.kubeconfig, "-q"],
        capture_output=True, text=True, check=False)
    assert verify.returncode == 0, verify.stderr
    # Every version is signed with the demo's key, which the lineage trusts.
    assert lineage["spec"]["signing"]["secretRef"]["name"] == m.SIGNING_SECRET
    assert "signatures verified: 3 versions signed by trusted keys" in verify.stdout, verify.stdout

    summary = json.loads((state_dir / "demo" / "summary.json").read_text())
    assert summary["verified"] is True
    # The tamper step: verify exited 1 and the server refused to get ready, naming the file;
    # the file was put back (verify above passed on the same version).
    tamper = summary["tamper"]
    assert tamper["file"].endswith(f"/{m.WEEK2}/config.json")
    assert tamper["verifyExit"] == 1
    assert "config.json" in tamper["server"] and "refused" in tamper["server"], tamper
    assert {k: v for k, v in summary["versions"].items() if k != m.WEEK2_COLD} == phases
    svg = Path(summary["svg"])
    root = ET.parse(svg).getroot()
    assert root.tag.endswith("svg")
    text = svg.read_text()
    assert all(name in text for name in (m.WEEK1, m.WEEK2, m.MISLABELLED))
    curves = Path(summary["curves"]).read_text()
    assert ET.fromstring(curves).tag.endswith("svg")
    assert m.WEEK2 in curves and m.WEEK2_COLD in curves
    # The pictures also as PNG, for those who would rather look than read.
    for png in (Path(summary["png"]), Path(summary["curves"]).with_suffix(".png")):
        assert png.read_bytes().startswith(b"\x89PNG"), png


def images_of(info: localcluster.ClusterInfo, selector: str) -> set[str]:
    """The images of the pods with that label, in any namespace."""
    pods: dict[str, Any] = kubectl_json(info, "get", "pods", "-A", "-l", selector)
    return {c["image"] for p in pods["items"] for c in p["spec"]["containers"]}


def assert_real_node_shown(out: str, info: localcluster.ClusterInfo) -> None:
    """What only a real node shows: the images built here ran, names and logs came through
    the cluster's own Service DNS and log API."""
    assert "(a real node: kubelet, containerd, runc)" in out
    service = f"http://{m.DEPLOYMENT}.reviews.svc.cluster.local/v2/models/"
    assert f"kubectl run {demo_workloads.PREDICT_POD}" in out and service in out, out[-4000:]
    assert f"(log: kubectl logs -n reviews {m.WEEK1}-train-" in out, out[-4000:]
    assert f"committed version {m.WEEK1}" in out, out[-4000:]
    assert images_of(info, "app.kubernetes.io/component=operator") == {
        demo_workloads.OPERATOR_IMAGE}
    assert images_of(info, f"app={m.DEPLOYMENT}") == {demo_workloads.TRAINER_IMAGE}
    jobs = kubectl_json(info, "get", "jobs")
    assert {c["image"] for j in jobs["items"]
            for c in j["spec"]["template"]["spec"]["containers"]} == {demo_workloads.TRAINER_IMAGE}
    endpoints = kubectl_json(info, "get", "endpoints", m.DEPLOYMENT)
    assert endpoints["subsets"][0]["addresses"], endpoints


def run_readme_concepts(state_dir: Path) -> None:
    """The README's "after the demo" commands, verbatim, with kubectl and the CLI on PATH."""
    info = localcluster.ClusterInfo.load(state_dir)
    path = f"{Path(sys.executable).parent}:{Path(info.kubectl).parent}:{os.environ['PATH']}"
    workdir = state_dir / "readme"
    workdir.mkdir(exist_ok=True)
    ran = readme.run_section("Concepts", {"PATH": path, "KUBECONFIG": info.kubeconfig},
                             workdir, timeout=120)
    out = {r.command.split(" -n ")[0].split(" -A")[0]: r.stdout for r in ran}
    listing = out["kubectl get warmstart"]
    assert f"modellineage.warmstart.dev/{m.LINEAGE}" in listing, listing
    assert f"warmstartjob.warmstart.dev/{m.MISLABELLED}" in listing, listing
    assert "maxEpochs" in out["kubectl explain wsj.spec.training"]
    tree = out[f"warmstart lineage tree {m.LINEAGE}"]
    assert all(v in tree for v in (m.WEEK1, m.WEEK2, m.MISLABELLED)), tree
    assert out[f"kubectl warmstart lineage tree {m.LINEAGE}"] == tree  # the same CLI
    assert ET.parse(workdir / "lineage.svg").getroot().tag.endswith("svg")
    lineage = kubectl_json(info, "get", "modellineage", m.LINEAGE)
    assert lineage["spec"]["pinnedVersion"] == m.WEEK2  # what `warmstart promote` did


def test_quick_demo_tells_the_story_and_runs_again(state_dir: Path) -> None:
    out = run_demo(state_dir)
    assert "week-1 replay accuracy" in out  # the warm vs cold table
    assert "answered by model version reviews-week1" in out
    assert "7. Tampering" in out and "verify refuses it (exit 1)" in out
    assert "the server never reports ready" in out
    assert f"export KUBECONFIG={state_dir}/kubeconfig" in out
    assert "AWS_SECRET_ACCESS_KEY=" not in out
    info = localcluster.ClusterInfo.load(state_dir)
    assert info.s3_secret_key not in out
    assert_story_outcome(state_dir)
    assert_real_node_shown(out, info)
    run_readme_concepts(state_dir)

    # The re-run, through its first warm start (what depends on the earlier run's leftovers
    # is the set-up; the later steps only repeat the story): nothing to clean by hand, and
    # the lineage starts over instead of carrying the earlier run's versions.
    again = run_demo(state_dir, "--down", "--stop-after", "2")
    assert "namespace reviews is left from an earlier run: deleting it" in again
    assert "3. Week 2" not in again
    assert localcluster.status(state_dir) is None, "--down must stop the cluster"
    summary = json.loads((state_dir / "demo" / "summary.json").read_text())
    assert summary["versions"] == {"base": "Promoted", m.WEEK1: "Promoted"}, summary
