"""Installing the CRDs and the operator into the local cluster.

`install_operator` is the one place that decides how the operator runs: with the Helm
chart (the operator is then the chart's pod), or as a background process on this machine,
started like a cluster component: it carries the cluster's marker, so `warmstart-cluster
down` stops it with everything else, and a re-run of the demo replaces it rather than
adding a second.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from warmstart.cli.kube import Kube, wait_until
from warmstart.demo import workloads
from warmstart.demo.console import Console
from warmstart.demo.errors import DemoError
from warmstart.demo.manifests import REPO
from warmstart_localcluster import processes
from warmstart_localcluster.ports import free_ports

CRD_NAMES = ("crd/warmstartjobs.warmstart.dev", "crd/modellineages.warmstart.dev")
OPERATOR_NAME = "warmstart-operator"
CHART = REPO / "charts" / "warmstart"
RELEASE = "warmstart"
OPERATOR_NAMESPACE = "warmstart-system"
# The operator runs as the chart's pod, as on a real cluster. WARMSTART_DEMO_OPERATOR=process
# runs it as a local process from the working tree instead: no chart involved, and each run
# starts it afresh, which suits work on the operator itself.
MODE_ENV = "WARMSTART_DEMO_OPERATOR"


def install_crds(kube: Kube, console: Console) -> None:
    console.command("kubectl apply --server-side -f crds/")
    kube.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(REPO / "crds"))
    # Polled rather than `kubectl wait --for=condition=Established`, which fails outright
    # when it reads a CRD before the API server has given it any status conditions.
    path = '{.status.conditions[?(@.type=="Established")].status}'
    for name in CRD_NAMES:
        def established(name: str = name) -> bool:
            return kube.kubectl("get", name, "-o", f"jsonpath={path}") == "True"

        wait_until(f"{name} to be established", established, timeout=60, interval=0.2)


def _helm_mode() -> bool:
    return os.environ.get(MODE_ENV, "helm") != "process" and (CHART / "Chart.yaml").is_file()


def install_operator(kube: Kube, state_dir: Path, helm: str, console: Console) -> None:
    """Runs the operator for the demo's namespace, its trainer Jobs from the trainer image
    built here."""
    if _helm_mode():
        if stop_previous(state_dir.resolve()):
            console.say("stopped the operator process an earlier run started")
        _install_with_helm(kube, helm, console, workloads.helm_values())
    else:
        _run_as_process(kube, state_dir, console)


def log_hint(state_dir: Path) -> str:
    """Where to read the operator's log."""
    if _helm_mode():
        return f"kubectl logs -n {OPERATOR_NAMESPACE} deployment/{RELEASE}"
    return str(state_dir / "logs" / f"{OPERATOR_NAME}.log")


def _install_with_helm(kube: Kube, helm: str, console: Console,
                       extra_values: Sequence[str]) -> None:
    # The CRDs are applied from crds/ beforehand (the chart's copies are the same files):
    # with crds.enabled the chart refuses CRDs it did not create, e.g. after a run that
    # applied them, and an uninstall could take every lineage with them.
    values = ["crds.enabled=false", "operator.pollSeconds=1", *extra_values]
    console.command(f"helm upgrade --install {RELEASE} charts/warmstart -n "
                    f"{OPERATOR_NAMESPACE} --create-namespace "
                    + " ".join(f"--set {v}" for v in values) + " --wait")
    argv = [helm, f"--kubeconfig={kube.kubeconfig}", "upgrade", "--install", RELEASE,
            str(CHART), "-n", OPERATOR_NAMESPACE, "--create-namespace", "--wait",
            "--timeout=5m"]
    for value in values:
        argv += ["--set", value]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=360, check=False)
    if done.returncode != 0:
        raise DemoError(f"helm install failed:\n{done.stderr.strip()}")
    kube.kubectl("rollout", "status", f"deployment/{RELEASE}", "-n", OPERATOR_NAMESPACE,
                 "--timeout=180s", timeout=200)
    console.say(f"operator running as Deployment {OPERATOR_NAMESPACE}/{RELEASE}")


def _pid_file(state_dir: Path) -> Path:
    return state_dir / "demo" / "operator.pid"


def _is_our_operator(pid: int, state_dir: Path) -> bool:
    """Only a process this cluster's demo started: the marker and the module must match."""
    proc = Path("/proc") / str(pid)
    try:
        environ = (proc / "environ").read_bytes().split(b"\0")
        cmdline = (proc / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    marker = f"{processes.MARKER_ENV}={state_dir}".encode()
    return marker in environ and b"warmstart_operator" in cmdline


def stop_previous(state_dir: Path) -> bool:
    pid_file = _pid_file(state_dir)
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return False
    pid_file.unlink(missing_ok=True)
    if not _is_our_operator(pid, state_dir):
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and _is_our_operator(pid, state_dir):
        time.sleep(0.2)
    if _is_our_operator(pid, state_dir):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return True


def _metrics_up(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2):
            return True
    except (urllib.error.URLError, OSError):
        return False


def _run_as_process(kube: Kube, state_dir: Path, console: Console) -> None:
    state_dir = state_dir.resolve()
    if stop_previous(state_dir):
        console.say("stopped the operator an earlier run started")
    port = free_ports(1)[0]
    env = {
        "KUBECONFIG": kube.kubeconfig,
        "WARMSTART_METRICS_PORT": str(port),
        "WARMSTART_METRICS_ADDRESS": "127.0.0.1",
        # Look at a running training every second (default 5): the demo waits on it.
        "WARMSTART_POLL_SECONDS": "1",
        # Its trainer Jobs run the trainer image, as the chart's operator's do.
        "WARMSTART_TRAINER_IMAGE": workloads.TRAINER_IMAGE,
    }
    argv = [sys.executable, "-m", "warmstart_operator", "-n", kube.namespace]
    console.command(f"python -m warmstart_operator -n {kube.namespace}   "
                    "(in the background; the Helm chart runs it as a pod)")
    pid = processes.start(OPERATOR_NAME, argv, state_dir, env=env)
    pid_file = _pid_file(state_dir)
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.write_text(f"{pid}\n")
    log = state_dir / "logs" / f"{OPERATOR_NAME}.log"

    def up() -> bool:
        if not _is_our_operator(pid, state_dir):
            tail = processes.log_tail(state_dir, OPERATOR_NAME)
            raise DemoError(f"the operator exited at start-up; its log ({log}):\n{tail}")
        return _metrics_up(port)

    wait_until("the operator's metrics endpoint", up, timeout=90, interval=0.5)
    console.say(f"operator running (pid {pid}), metrics on http://127.0.0.1:{port}/metrics, "
                f"log {log}")
