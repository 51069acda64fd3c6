"""Operator benchmark: N WarmStartJobs spread over several namespaces, each training the
trainer's smallest real model (a 2-layer BERT with hidden size 32) on the local cluster.

Prints, for creation -> training Job created and training Job complete -> version
registered in the lineage: p50 and p95; API requests the operator made per WarmStartJob;
the operator's peak resident memory. Creation -> Job is mostly queueing (a few trainings
per lineage at a time), so it also prints ready -> Job created, where ready is the later of
the job's creation and the moment a slot of its lineage freed up (the last completion of
another job of that lineage before its Job appeared): the operator's own hand-off delay.

    python benchmarks/operator_bench.py [--jobs 200] [--namespaces 5] [--parallel 2]

Uses its own cluster state directory, so a running dev cluster is left alone.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from kubernetes import client, config

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.trainer.support import make_tiny_base, sentiment_rows  # noqa: E402
from warmstart.storage import S3Settings, Storage  # noqa: E402
from warmstart_localcluster import cluster  # noqa: E402
from warmstart_localcluster.ports import free_ports  # noqa: E402
from warmstart_localcluster.processes import MARKER_ENV  # noqa: E402
from warmstart_trainer.publish import publish_base  # noqa: E402

GROUP, VERSION = "warmstart.dev", "v1alpha1"


def ts(value: str) -> float:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--namespaces", type=int, default=5)
    parser.add_argument("--parallel", type=int, default=2,
                        help="trainings per lineage at once (WARMSTART_MAX_ACTIVE_PER_LINEAGE)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="warmstart-opbench-") as tmp:
        state = Path(tmp) / "cluster"
        info = cluster.up(state, fresh=True)
        try:
            run(info, Path(tmp), args)
        finally:
            cluster.down(state)


def run(info: cluster.ClusterInfo, tmp: Path, args: argparse.Namespace) -> None:
    subprocess.run([info.kubectl, f"--kubeconfig={info.kubeconfig}", "apply", "--server-side",
                    "-f", str(REPO / "crds")], check=True, capture_output=True)
    api = config.new_client_from_config(config_file=info.kubeconfig)
    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
    store = Storage(S3Settings.from_env(info.s3_env()))
    boto = store.s3
    boto.create_bucket(Bucket="bench")
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

    port = free_ports(1)[0]
    env = {**os.environ, "KUBECONFIG": info.kubeconfig, "WARMSTART_METRICS_PORT": str(port),
           "WARMSTART_METRICS_ADDRESS": "127.0.0.1", "WARMSTART_POLL_SECONDS": "2",
           "WARMSTART_MAX_ACTIVE_PER_LINEAGE": str(args.parallel),
           "WARMSTART_TRAINER_COMMAND": f"{sys.executable} -m warmstart_trainer",
           MARKER_ENV: info.state_dir}
    operator = subprocess.Popen([sys.executable, "-m", "warmstart_operator"], env=env,
                                stdout=(tmp / "operator.log").open("wb"),
                                stderr=subprocess.STDOUT)
    time.sleep(5)
    created: dict[tuple[str, str], float] = {}
    started = time.monotonic()
    for i in range(args.jobs):
        ns = namespaces[i % len(namespaces)]
        name = f"job-{i:04d}"
        custom.create_namespaced_custom_object(GROUP, VERSION, ns, "warmstartjobs", {
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "WarmStartJob",
            "metadata": {"name": name},
            "spec": {"lineageRef": {"name": "bench"},
                     "dataset": {"trainURI": "s3://bench/data/train.jsonl",
                                 "validationFraction": 0.25},
                     "training": {"maxEpochs": 1, "batchSize": 16, "maxSeqLength": 16,
                                  "checkpointEverySteps": 1000},
                     "backoffLimit": 0}})
        created[(ns, name)] = time.time()
    print(f"created {args.jobs} WarmStartJobs in {time.monotonic() - started:.1f}s",
          flush=True)

    def finished() -> int:
        count = 0
        for ns in namespaces:
            for obj in custom.list_namespaced_custom_object(GROUP, VERSION, ns,
                                                            "warmstartjobs")["items"]:
                if (obj.get("status") or {}).get("phase") in ("Succeeded", "Rejected",
                                                               "Failed"):
                    count += 1
        return count

    peak = [0]

    def sample_memory() -> None:
        while operator.poll() is None:
            peak[0] = max(peak[0], peak_rss_kib(operator.pid))
            time.sleep(1)

    threading.Thread(target=sample_memory, daemon=True).start()
    while (done := finished()) < args.jobs:
        print(f"  {done}/{args.jobs} finished, {time.monotonic() - started:.0f}s", flush=True)
        time.sleep(10)
    total = time.monotonic() - started

    to_job, to_registered, handoff, failed = [], [], [], 0
    batch = client.BatchV1Api(api)
    ended: dict[str, list[float]] = {
        ns: [ts(o["status"]["completionTime"]) for o in custom.list_namespaced_custom_object(
            GROUP, VERSION, ns, "warmstartjobs")["items"]
            if (o.get("status") or {}).get("completionTime")] for ns in namespaces}
    for (ns, name), _ in created.items():
        obj = custom.get_namespaced_custom_object(GROUP, VERSION, ns, "warmstartjobs", name)
        if obj["status"]["phase"] == "Failed":
            failed += 1
            continue
        job = batch.read_namespaced_job(f"{name}-train", ns)
        job_created = job.metadata.creation_timestamp.timestamp()
        wsj_created = ts(obj["metadata"]["creationTimestamp"])
        to_job.append(job_created - wsj_created)
        ready = max([wsj_created] + [t for t in ended[ns] if t <= job_created])
        handoff.append(job_created - ready)
        completed = job.status.completion_time.timestamp()
        registered = next(ts(c["lastTransitionTime"]) for c in obj["status"]["conditions"]
                          if c["type"] == "Trained")
        to_registered.append(max(0.0, registered - completed))
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        metrics = resp.read().decode()
    operator.terminate()
    operator.wait(timeout=30)
    requests = _operator_requests(metrics)
    print()
    print(f"WarmStartJobs: {args.jobs} over {len(namespaces)} namespaces, {failed} failed, "
          f"all finished in {total:.0f}s")
    print(f"creation -> Job created:       p50 {statistics.median(to_job):6.2f}s  "
          f"p95 {pct(to_job, 0.95):6.2f}s   (includes queueing: {args.parallel} per lineage)")
    print(f"ready -> Job created:          p50 {statistics.median(handoff):6.2f}s  "
          f"p95 {pct(handoff, 0.95):6.2f}s   (timestamps have 1 s resolution)")
    print(f"Job complete -> registered:    p50 {statistics.median(to_registered):6.2f}s  "
          f"p95 {pct(to_registered, 0.95):6.2f}s")
    if requests:
        print(f"API requests per WarmStartJob: {requests / args.jobs:.1f}")
    print(f"operator peak RSS:             {peak[0] / 1024:.0f} MiB")


def _operator_requests(metrics: str) -> int:
    for line in metrics.splitlines():
        if line.startswith("warmstart_api_requests_total "):
            return int(float(line.split()[1]))
    return 0


if __name__ == "__main__":
    main()

