"""Operator benchmark: the operator's own latencies, API writes and memory, not the
trainings'. On its own local cluster:

1. N suspended WarmStartJobs over M namespaces (one lineage each): creation -> the
   operator's first status write (it resolved and verified the parent against S3 and
   parked the job), API writes per job, operator RSS with all N held.
2. T tiny real trainings (a 2-layer BERT with hidden size 32, one per namespace so none
   queues): creation -> training Job created, training Job complete -> version recorded in
   the lineage, API writes per WarmStartJob over its whole life.

Every latency comes from client-side monotonic timestamps taken when a watch delivers the
event (the API's own timestamps have 1 s resolution). Each figure is printed beside the
previous operator's (README, N=200 tiny trainings; pacer + timers + per-reconcile LISTs).

    python benchmarks/operator_bench.py [--jobs 500] [--namespaces 25] [--trainings 4]
    python benchmarks/operator_bench.py --quick   # 4 held jobs, 2 namespaces, 2 trainings
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubernetes import client, config, watch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.common import operator_process, own_cluster  # noqa: E402
from tests.trainer.support import make_tiny_base, sentiment_rows  # noqa: E402
from warmstart.storage import S3Settings, Storage  # noqa: E402
from warmstart_localcluster import cluster  # noqa: E402
from warmstart_trainer.publish import publish_base  # noqa: E402

GROUP, VERSION = "warmstart.dev", "v1alpha1"
# The previous operator, README "Benchmarks" (N=200, 5 namespaces, 2 trainings per lineage).
BEFORE = {"ready -> Job created p50": "1 s (1 s resolution)",
          "ready -> Job created p95": "11 s",
          "Job complete -> registered p50": "1 s (1 s resolution)",
          "Job complete -> registered p95": "4 s",
          "API requests per WarmStartJob": "99.5 (reads and writes)",
          "operator peak RSS": "449 MiB at 200 jobs"}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used (a figure the machine's load does not
    inflate the way it inflates wall-clock latencies)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def reconcile_mean_ms(port: int) -> float:
    """Mean wall time of the operator's WarmStartJob reconciles so far, from /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    total = count = 0.0
    for line in text.splitlines():
        if 'kind="WarmStartJob"' not in line:
            continue
        if line.startswith("warmstart_reconcile_duration_seconds_sum"):
            total = float(line.split()[-1])
        elif line.startswith("warmstart_reconcile_duration_seconds_count"):
            count = float(line.split()[-1])
    return 1000.0 * total / count if count else 0.0


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Watcher:
    """Records, per object, the monotonic time at which a watch first showed a condition."""

    def __init__(self, lister: Callable[..., Any], *args: str,
                 probes: dict[str, Callable[[dict[str, Any]], list[str]]]) -> None:
        self.lister, self.args, self.probes = lister, args, probes
        self.seen: dict[str, dict[str, float]] = {name: {} for name in probes}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        resume: str | None = None
        while not self.stop.is_set():
            try:
                resume = self._watch(resume)
            except Exception:  # a dropped watch (or the cluster going down): list again
                resume = None
                if self.stop.wait(0.5):
                    return

    def _watch(self, resume: str | None) -> str | None:
        """One watch call; returns where the next resumes (a fresh watch would list every
        object again, which at 500 jobs is load on the machine being measured)."""
        w = watch.Watch()
        # A short server timeout: the thread notices `stop` within seconds.
        extra = {"resource_version": resume} if resume else {}
        for event in w.stream(self.lister, *self.args, timeout_seconds=5, **extra):
            at = time.monotonic()
            obj = event["object"]
            if not isinstance(obj, dict):
                obj = client.ApiClient().sanitize_for_serialization(obj)
            for probe, keys_of in self.probes.items():
                for key in keys_of(obj):
                    self.seen[probe].setdefault(key, at)
            if self.stop.is_set():
                break
        return str(w.resource_version) if w.resource_version else None

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=10)


def key(obj: dict[str, Any]) -> str:
    return f"{obj['metadata']['namespace']}/{obj['metadata']['name']}"


def requests(port: int) -> tuple[float, float]:
    """(reads, writes) the operator has sent so far, from its /metrics."""
    by_kind = request_counts(port)
    reads = sum(v for (method, _), v in by_kind.items() if method == "GET")
    return reads, sum(by_kind.values()) - reads


def request_counts(port: int) -> dict[tuple[str, str], float]:
    """{(method, resource): requests} the operator has sent so far, from its /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    counts: dict[tuple[str, str], float] = {}
    for line in text.splitlines():
        if line.startswith("warmstart_api_requests_total{"):
            labels = dict(part.split("=", 1) for part in
                          line[line.index("{") + 1:line.index("}")].split(","))
            key = (labels["method"].strip('"'), labels.get("resource", '""').strip('"'))
            counts[key] = counts.get(key, 0.0) + float(line.split()[-1])
    return counts


def writes_by_resource(before: dict[tuple[str, str], float],
                       after: dict[tuple[str, str], float], per: int) -> str:
    """"PATCH warmstartjobs/status 4.0, POST events 3.0, ..." per object, writes only."""
    rows = sorted(((after[k] - before.get(k, 0.0)) / max(1, per), k) for k in after
                  if k[0] != "GET" and after[k] > before.get(k, 0.0))
    return ", ".join(f"{method} {resource} {n:.1f}" for n, (method, resource) in reversed(rows))


def wait(what: str, done: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=500, help="suspended WarmStartJobs")
    parser.add_argument("--namespaces", type=int, default=25)
    parser.add_argument("--trainings", type=int, default=4, help="tiny real trainings")
    parser.add_argument("--spacing", type=float, default=2.0,
                        help="seconds between the trainings' creations (0: all at once)")
    parser.add_argument("--quick", action="store_true",
                        help="4 held jobs over 2 namespaces and 2 trainings (what CI runs)")
    parser.add_argument("--operator-log", type=Path, default=None,
                        help="keep the operator's log here (it is deleted with the cluster)")
    args = parser.parse_args()
    if args.quick:
        args.jobs, args.namespaces, args.trainings = 4, 2, 2
    with tempfile.TemporaryDirectory(prefix="warmstart-opbench-") as tmp, \
            own_cluster() as info:
        run(info, Path(tmp), args)


def wsj(name: str, suspend: bool) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "WarmStartJob",
            "metadata": {"name": name},
            "spec": {"lineageRef": {"name": "bench"}, "suspend": suspend,
                     "dataset": {"trainURI": "s3://bench/data/train.jsonl",
                                 "validationFraction": 0.25},
                     "training": {"maxEpochs": 1, "batchSize": 16, "maxSeqLength": 16,
                                  "checkpointEverySteps": 1000},
                     "backoffLimit": 0}}


def run(info: cluster.ClusterInfo, tmp: Path, args: argparse.Namespace) -> None:
    subprocess.run([info.kubectl, f"--kubeconfig={info.kubeconfig}", "apply", "--server-side",
                    "-f", str(REPO / "crds")], check=True, capture_output=True)
    api = config.new_client_from_config(config_file=info.kubeconfig)
    core, custom, batch = client.CoreV1Api(api), client.CustomObjectsApi(api), \
        client.BatchV1Api(api)
    store = Storage(S3Settings.from_env(info.s3_env()))
    store.s3.create_bucket(Bucket="bench")
    _, digest = publish_base(store, make_tiny_base(tmp / "base"), "s3://bench/base/",
                             lineage="bench")
    rows = "".join(json.dumps(r) + "\n" for r in sentiment_rows(32, seed=1)).encode()
    store.put_bytes("s3://bench/data/train.jsonl", rows)
    namespaces = [f"bench-{i}" for i in range(args.namespaces)]
    for ns in namespaces:
        core.create_namespace({"metadata": {"name": ns}})
        while not core.list_namespaced_service_account(ns).items:
            time.sleep(0.1)
        core.create_namespaced_secret(ns, {"metadata": {"name": "s3"},
                                           "stringData": info.s3_env()})
        custom.create_namespaced_custom_object(GROUP, VERSION, ns, "modellineages", {
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "ModelLineage",
            "metadata": {"name": "bench"},
            "spec": {"labels": ["negative", "positive"],
                     "storage": {"uri": f"s3://bench/{ns}/", "secretRef": {"name": "s3"}},
                     "base": {"uri": "s3://bench/base/", "digest": digest},
                     "evaluation": {"holdoutURI": "s3://bench/data/train.jsonl"},
                     "promotion": {"policy": "Manual"}}})

    jobs = Watcher(custom.list_cluster_custom_object, GROUP, VERSION, "warmstartjobs", probes={
        "status": lambda o: [key(o)] if (o.get("status") or {}).get("phase") else []})
    trains = Watcher(batch.list_job_for_all_namespaces, probes={
        "created": lambda o: [key(o)],
        "complete": lambda o: [key(o)] if any(
            c.get("type") == "Complete" and c.get("status") == "True"
            for c in (o.get("status") or {}).get("conditions") or []) else []})
    lineages = Watcher(custom.list_cluster_custom_object, GROUP, VERSION, "modellineages",
                       probes={"recorded": lambda o: [
                           f"{o['metadata']['namespace']}/{v['name']}"
                           for v in (o.get("status") or {}).get("versions") or []]})

    try:
        with operator_process(info, tmp / "operator.log") as (operator, port):
            wait("the operator", lambda: _up(port), 60)
            wait("base versions", lambda: len(lineages.seen["recorded"]) >= len(namespaces),
                 120)
            measure(args, namespaces, custom, operator, port, jobs, trains, lineages)
    finally:
        for w in (jobs, trains, lineages):
            w.close()
        if args.operator_log:
            shutil.copyfile(tmp / "operator.log", args.operator_log)


def _up(port: int) -> bool:
    try:
        requests(port)
        return True
    except OSError:
        return False


def measure(args: argparse.Namespace, namespaces: list[str], custom: client.CustomObjectsApi,
            operator: subprocess.Popen[bytes], port: int, jobs: Watcher, trains: Watcher,
            lineages: Watcher) -> None:
    # 1. Suspended jobs: the operator's reaction, its writes and its memory.
    counts_before = request_counts(port)
    _, writes_before = requests(port)
    cpu_before = cpu_seconds(operator.pid)
    created: dict[str, float] = {}
    started = time.monotonic()
    for i in range(args.jobs):
        ns, name = namespaces[i % len(namespaces)], f"held-{i:04d}"
        custom.create_namespaced_custom_object(GROUP, VERSION, ns, "warmstartjobs",
                                               wsj(name, suspend=True))
        created[f"{ns}/{name}"] = time.monotonic()
    wait("every suspended job's first status", lambda: all(
        k in jobs.seen["status"] for k in created), 600)
    react = [jobs.seen["status"][k] - t for k, t in created.items()]
    counts_held = request_counts(port)
    _, writes_after = requests(port)
    held_rss = rss_mib(operator.pid)
    cpu_held = cpu_seconds(operator.pid)
    held_cpu = (cpu_held - cpu_before) / max(1, args.jobs)
    held_writes = (writes_after - writes_before) / max(1, args.jobs)
    print(f"suspended: {args.jobs} WarmStartJobs over {len(namespaces)} namespaces, all parked "
          f"in {time.monotonic() - started:.0f}s")

    # 2. Tiny real trainings, one per namespace: the hand-offs around each training.
    trained: dict[str, float] = {}
    args.trainings = min(args.trainings, len(namespaces))
    for ns in namespaces[: args.trainings]:
        custom.create_namespaced_custom_object(GROUP, VERSION, ns, "warmstartjobs",
                                               wsj("run", suspend=False))
        trained[f"{ns}/run"] = time.monotonic()
        # Apart, so each creation -> Job is the operator's reaction to one job, not its
        # place in a burst (--spacing 0 measures the burst).
        time.sleep(args.spacing)
    wait("the tiny trainings to be recorded", lambda: all(
        k in lineages.seen["recorded"] for k in trained), 1800)
    to_job = [trains.seen["created"][f"{k}-train"] - t for k, t in trained.items()]
    to_record = [lineages.seen["recorded"][k] - trains.seen["complete"][f"{k}-train"]
                 for k in trained]
    wait("the trainings' jobs to finish", lambda: all(
        (custom.get_namespaced_custom_object(GROUP, VERSION, k.split("/")[0], "warmstartjobs",
                                             "run").get("status") or {}).get("phase")
        in ("Succeeded", "Rejected", "Failed") for k in trained), 120)
    time.sleep(2)  # the last events of each job's end
    counts_end = request_counts(port)
    life_cpu = (cpu_seconds(operator.pid) - cpu_held) / max(1, args.trainings)
    _, writes_end = requests(port)
    life_writes = (writes_end - writes_after) / max(1, args.trainings)

    ms = 1000.0
    rows = [
        ("creation -> first status (suspended) p50", f"{statistics.median(react) * ms:.0f} ms",
         "-"),
        ("creation -> first status (suspended) p95", f"{pct(react, 0.95) * ms:.0f} ms", "-"),
        ("creation -> Job created p50", f"{statistics.median(to_job) * ms:.0f} ms",
         BEFORE["ready -> Job created p50"] + "; target <= 100 ms"),
        ("creation -> Job created p95", f"{pct(to_job, 0.95) * ms:.0f} ms",
         BEFORE["ready -> Job created p95"] + "; target <= 500 ms"),
        ("Job complete -> registered p50", f"{statistics.median(to_record) * ms:.0f} ms",
         BEFORE["Job complete -> registered p50"] + "; target <= 500 ms"),
        ("Job complete -> registered p95", f"{pct(to_record, 0.95) * ms:.0f} ms",
         BEFORE["Job complete -> registered p95"]),
        ("API writes per WarmStartJob (whole life)", f"{life_writes:.1f}",
         BEFORE["API requests per WarmStartJob"] + "; target <= 10"),
        ("API writes per suspended WarmStartJob", f"{held_writes:.1f}", "-"),
        (f"operator RSS with {args.jobs} jobs", f"{held_rss:.0f} MiB",
         BEFORE["operator peak RSS"] + "; target <= 200 MiB"),
    ]
    print()
    print(f"WarmStartJobs: {args.jobs} suspended + {args.trainings} trained over "
          f"{len(namespaces)} namespaces")
    width = max(len(r[0]) for r in rows)
    print(f"{'':{width}}  {'now':>10}  before (README) / target")
    for label, now, before in rows:
        print(f"{label:{width}}  {now:>10}  {before}")
    print(f"operator CPU per suspended job {held_cpu * ms:.0f} ms, per trained job "
          f"{life_cpu * ms:.0f} ms; mean WarmStartJob reconcile {reconcile_mean_ms(port):.0f} ms; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print()
    print("writes per suspended job:  " + writes_by_resource(counts_before, counts_held, args.jobs))
    print("writes per trained job:    " + writes_by_resource(counts_held, counts_end,
                                                           args.trainings))


if __name__ == "__main__":
    main()
