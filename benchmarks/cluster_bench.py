"""Local control plane benchmark: time to bring the cluster up with warm caches, and time
from Job creation to Job Complete for a trivial pod (median of several).

    python benchmarks/cluster_bench.py [--jobs 7]

It starts a cluster of its own, in a state directory of its own: stop a running cluster
first (the machine has room for one real node).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from kubernetes import client, config

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import own_cluster
from warmstart.demo.workloads import TRAINER_IMAGE
from warmstart_localcluster import binaries


def job_manifest(name: str) -> dict[str, object]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": 0,
            "template": {"spec": {"restartPolicy": "Never", "containers": [{
                "name": "main", "image": TRAINER_IMAGE, "command": ["true"]}]}},
        },
    }


def time_job(batch: client.BatchV1Api, ns: str, name: str) -> float:
    started = time.monotonic()
    batch.create_namespaced_job(ns, job_manifest(name))
    while True:
        status = batch.read_namespaced_job_status(name, ns).status
        if any(c.type == "Complete" and c.status == "True" for c in status.conditions or []):
            return time.monotonic() - started
        if any(c.type == "Failed" and c.status == "True" for c in status.conditions or []):
            raise SystemExit(f"job {name} failed")
        time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=7)
    args = parser.parse_args()
    binaries.ensure_all()  # building is not what this measures
    started = time.monotonic()
    with own_cluster() as info:
        up_seconds = time.monotonic() - started
        api = config.new_client_from_config(config_file=info.kubeconfig)
        core, batch = client.CoreV1Api(api), client.BatchV1Api(api)
        core.create_namespace({"metadata": {"name": "bench"}})
        while not core.list_namespaced_service_account("bench").items:
            time.sleep(0.1)
        times = []
        for i in range(args.jobs):
            seconds = time_job(batch, "bench", f"trivial-{i}")
            times.append(seconds)
            print(f"  job {i + 1}/{args.jobs}: {seconds:.2f}s", flush=True)
    print()
    print(f"cluster up (warm caches):        {up_seconds:6.2f} s")
    print(f"job create -> Complete, median:  {statistics.median(times):6.2f} s "
          f"(min {min(times):.2f}, max {max(times):.2f}, n={len(times)})")


if __name__ == "__main__":
    main()
