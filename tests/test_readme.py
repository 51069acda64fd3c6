"""Every shell command in README.md is run by a test or by CI.

`test_every_readme_command_is_run_somewhere` fails when a command is added to the README
without a test that runs it. The sections whose commands need nothing the demo leaves
behind run here: the local cluster's (on a cluster of their own), the Helm install
(as a server-side dry run: a real install would start a second operator watching every
namespace of the shared test cluster) and the benchmarks (with smaller sizes). The
"after the demo" commands run in tests/demo/test_demo_quick.py, on the demo's cluster. The
tests that start a cluster of their own are `own_node` (scripts/test.sh runs them after the
session cluster is down: one real node per machine).
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests import readme
from tests.conftest import TRAINER_IMAGE
from warmstart_localcluster import binaries
from warmstart_localcluster import cluster as localcluster
from warmstart_localcluster.node import network

REPO = readme.REPO
VENV_BIN = str(Path(sys.executable).parent)

# Commands run verbatim by a file that is not a test: (command, file that runs it).
VERBATIM = {
    "scripts/test.sh": REPO / ".ci" / "run",  # CI is exactly the README's test command
    "scripts/demo.sh": REPO / "tests" / "demo" / "test_demo_quick.py",  # with --quick
}
# README sections run whole by a test through readme.run_section("<section>", ...).
SECTIONS = {
    "Concepts": REPO / "tests" / "demo" / "test_demo_quick.py",
    "The local cluster": Path(__file__),
    "Installing on a real cluster": Path(__file__),
    "Benchmarks": Path(__file__),
    "Warm start vs cold start": Path(__file__),
    "Serving": REPO / "tests" / "server" / "test_readme_serving.py",
}


def test_every_readme_command_is_run_somewhere() -> None:
    found = readme.commands()
    assert len(found) >= 15, found  # the parser still sees the README's blocks
    for command in found:
        if command.line in VERBATIM:
            assert command.line in VERBATIM[command.line].read_text(), command
            continue
        assert command.section in SECTIONS, (
            f"README command {command.line!r} (under '## {command.section}') is run by no "
            "test: run its section with tests.readme.run_section and list it here")
        runner = SECTIONS[command.section].read_text()
        call = r"run_section\(\s*" + re.escape(f'"{command.section}"')
        assert re.search(call, runner), (command, SECTIONS[command.section])


def test_readme_parser_joins_continuations_and_drops_comments() -> None:
    text = ("## Setup\n\nprose `not a command`\n\n```sh\n# a comment line\n"
            "helm install x \\\n  --set a=b   # why\n\nkubectl get pods -A # all\n```\n"
            "```\nplain block\n```\n")
    assert readme.commands(text) == [
        readme.Command("Setup", "helm install x --set a=b"),
        readme.Command("Setup", "kubectl get pods -A")]


@pytest.mark.own_node
def test_local_cluster_commands(own_cluster_state: Path, tmp_path: Path) -> None:
    # The README's placeholder line gets a real pod to read: one that prints and exits.
    logs = "kubectl logs -n NAMESPACE POD"
    show_a_log = "\n".join([
        "until kubectl get serviceaccount default >/dev/null 2>&1; do sleep 0.5; done",
        f"kubectl run readme-pod --image={TRAINER_IMAGE} --restart=Never --command -- "
        "echo hello from a pod",
        "kubectl wait --for=jsonpath='{.status.phase}'=Succeeded pod/readme-pod --timeout=120s",
        "kubectl logs -n default readme-pod"])
    before = network.snapshot()
    (ran,) = readme.run_section(
        "The local cluster",
        {"WARMSTART_STATE": str(own_cluster_state), "PATH": f"{VENV_BIN}:{os.environ['PATH']}"},
        REPO, fill={logs: show_a_log}, one_shell=True, timeout=900)
    assert re.search(r"node/warmstart-node", ran.stdout), ran.stdout
    assert re.search(r"pod/coredns-", ran.stdout), ran.stdout
    assert "hello from a pod" in ran.stdout, ran.stdout
    assert localcluster.status(own_cluster_state) is None, "warmstart-cluster down left it running"
    assert network.snapshot() == before, "warmstart-cluster down left the node's network"


@pytest.mark.own_node
def test_helm_install_commands(own_cluster_state: Path) -> None:
    # A cluster of its own, as a real one would be: the shared test cluster has CRDs that
    # no Helm release owns, which `helm install` rightly refuses to adopt.
    info = localcluster.up(own_cluster_state, fresh=True)
    helm_dir = str(binaries.ensure("helm").parent)
    ran = readme.run_section(
        "Installing on a real cluster",
        {"KUBECONFIG": info.kubeconfig, "PATH": f"{helm_dir}:{os.environ['PATH']}"},
        REPO, append={"helm install": "--dry-run=server"}, timeout=300)
    cluster_wide, namespaced = (_manifests(r.stdout) for r in ran)
    deployment = next(d for d in cluster_wide if d["kind"] == "Deployment")
    env = {e["name"]: e.get("value") for e in
           deployment["spec"]["template"]["spec"]["containers"][0].get("env", [])}
    assert env["WARMSTART_TRAINER_IMAGE"] == "registry.example.com/warmstart/trainer:0.1.0"
    assert _granted(cluster_wide, "ClusterRole", "warmstartjobs", name="warmstart")
    # Only some namespaces: what the operator does is granted per namespace by Roles.
    roles = {d["metadata"]["namespace"] for d in namespaced
             if _granted([d], "Role", "warmstartjobs", name="warmstart")}
    assert roles == {"team-a", "team-b"}, roles
    # (The chart's aggregated view/edit ClusterRoles are for users, not the operator.)
    assert not _granted(namespaced, "ClusterRole", "warmstartjobs", name="warmstart")


def _manifests(helm_output: str) -> list[dict[str, Any]]:
    """The objects `helm install --dry-run` prints after MANIFEST: (NOTES: follow)."""
    text = helm_output.split("\nMANIFEST:\n", 1)[1].split("\nNOTES:\n", 1)[0]
    return [doc for doc in yaml.safe_load_all(text) if doc]


def _granted(docs: list[dict[str, Any]], kind: str, resource: str, name: str) -> bool:
    """Whether the operator's own role of this kind (named after the release) grants it."""
    return any(resource in rule.get("resources", []) for d in docs
               if d["kind"] == kind and d["metadata"]["name"] == name
               for rule in d.get("rules") or [])


# The README's benchmark commands at sizes a test can afford, each with what it must print.
BENCHMARKS: dict[str, tuple[str, list[str]]] = {
    "python benchmarks/cluster_bench.py": ("--jobs 2", [r"\d"]),
    "python benchmarks/trainer_bench.py": (
        "--quick --sizes 32 --epochs 1 --throughput-examples 16 "
        "--workdir {tmp}/trainer", ["warm start", "cold start"]),
    "python benchmarks/operator_bench.py": ("--quick", [
        re.escape("WarmStartJobs: 4 suspended + 2 trained over 2 namespaces"),
        r"API writes per WarmStartJob \(whole life\) +\d"]),
    "python benchmarks/gpu_check.py": (
        "--dry-run-on-cpu --tiny --train-examples 64 --check-examples 32",
        [re.escape("[gpu-check]")]),
    "python benchmarks/server_bench.py": ("--quick --workdir {tmp}/server", [
        r"\| 16 clients, 1 text/request \| [\d.]+ \|", "server RSS"]),
}


def test_every_benchmark_command_has_a_test() -> None:
    assert set(readme.section("Benchmarks")) == set(BENCHMARKS)


# The benchmarks that start a cluster of their own: after the session cluster is down.
OWN_CLUSTER = {"python benchmarks/cluster_bench.py", "python benchmarks/operator_bench.py"}


@pytest.mark.slow
@pytest.mark.timeout(1200)
@pytest.mark.parametrize("command", [
    pytest.param(c, marks=[pytest.mark.own_node] if c in OWN_CLUSTER else [])
    for c in sorted(BENCHMARKS)], ids=lambda c: c.split("/")[-1])
def test_benchmark_command(command: str, tmp_path: Path) -> None:
    # One test per script: a cluster-starting benchmark and a training one can run on
    # different test workers at once. Each prints the numbers it exists for.
    extra, expected = BENCHMARKS[command]
    (ran,) = readme.run_section(
        "Benchmarks", {"PATH": f"{VENV_BIN}:{os.environ['PATH']}"}, REPO, only=command,
        append={command: extra.format(tmp=tmp_path)}, timeout=1200)
    out = ran.stdout + ran.stderr
    for pattern in expected:
        assert re.search(pattern, out), out


@pytest.mark.own_node
@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_warm_vs_cold_command(tmp_path: Path) -> None:
    # The experiment through WarmStartJobs on a cluster of its own, at a size a test can
    # afford; the plot goes to tmp_path, not over the README's.
    (ran,) = readme.run_section(
        "Warm start vs cold start", {"PATH": f"{VENV_BIN}:{os.environ['PATH']}"}, REPO,
        append={"python benchmarks/warmstart_bench.py": (
            f"--quick --workdir {tmp_path / 'bench'} --plot {tmp_path / 'curves.svg'}")},
        timeout=1500)
    for method in ("| warm start", "| cold start", "| tfidf+logreg"):
        assert method in ran.stdout, ran.stdout
    assert (tmp_path / "curves.svg").read_text().startswith("<svg")
    assert (tmp_path / "curves.png").read_bytes().startswith(b"\x89PNG")
