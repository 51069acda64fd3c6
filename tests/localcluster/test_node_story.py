"""The product as a platform team installs it: the chart, the images and the warm-start story.

On the session cluster, in a namespace, release and bucket of its own (per test worker),
with the images scripts/build-images made:
the Helm chart installs the operator as a pod from the operator image; a tiny base is
published (and signed) to the cluster's S3 server, which pods reach on the node's bridge
address; a signing ModelLineage and a WarmStartJob train and sign a version in a Job pod
from the trainer image, under a memory limit; it is promoted and the serving Deployment
(the example's, from the trainer image) rolls out; a pod asks the server for a prediction
through the Service's DNS name; `kubectl logs` shows what the operator and the trainer
said, and the operator's metrics come through the chart's Service. Beside it, a WarmStartJob
naming an image that no registry has ends Failed with the pull named. A candidate whose
weights were altered in storage, pinned, never gets ready on the kubelet and is rolled back
to week1 (node_rollback.py). The chart sets the
operator's image-pull grace to 15 s (operator.imagePullGraceSeconds; 120 s by default) so
the bad-input run ends quickly.
"""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import LocalCluster, wait_for
from tests.localcluster.node_rollback import roll_back_a_version_that_cannot_start
from tests.operator.kit import Api, TinyLineage, jsonl, lineage_manifest, s3_secret, wsj_manifest
from tests.trainer.support import LABELS, make_tiny_base, sentiment_rows
from warmstart import record, signing
from warmstart.demo import workloads as demo_workloads
from warmstart.storage import S3Settings, Storage
from warmstart_localcluster import processes
from warmstart_localcluster.node import network

REPO = Path(__file__).resolve().parents[2]
TRAINER_IMAGE = demo_workloads.TRAINER_IMAGE
# Never built: its registry would be this machine's own localhost, where none listens.
MISSING_IMAGE = "localhost/warmstart/missing:dev"
OPERATOR_IMAGE = "localhost/warmstart/operator:dev"
# Per test worker (each imports the module): the session cluster is shared. The release's
# name holds the chart's, so its objects are named after the release alone.
_RUN = uuid.uuid4().hex[:6]
NS = f"story-{_RUN}"
RELEASE = f"warmstart-{_RUN}"
SERVER = "reviews-server"
BUCKET = f"story-{_RUN}"


@pytest.fixture(scope="module")
def node(cluster: LocalCluster, crds: None) -> Iterator[LocalCluster]:
    yield cluster
    cluster.kubectl("delete", "namespace", NS, "--wait=false", check=False)


def install_chart(node: LocalCluster) -> None:
    """The chart as a platform team installs it, with the images built here."""
    node.kubectl("create", "namespace", NS)
    wait_for("the default service account",
             lambda: node.kubectl("-n", NS, "get", "serviceaccount", "default",
                                  check=False).returncode == 0, timeout=60)
    values = {
        # The operator's and trainer's images as the demo installs them.
        **dict(value.split("=", 1) for value in demo_workloads.helm_values()),
        "operator.pollSeconds": "1",
        "operator.imagePullGraceSeconds": "15",
        # A prefix: also the missing image of the bad-input run below, which runs beside
        # week1 (as does the version the rollback step breaks) rather than queued behind it.
        "operator.trainer.allowedImages": "{localhost/warmstart/}",
        "operator.maxActivePerLineage": "3",
        "watchNamespaces": f"{{{NS}}}",
        # The session cluster's CRDs are kubectl's (the `crds` fixture): Helm would refuse
        # to adopt them.
        "crds.enabled": "false",
    }
    sets = [arg for key, value in values.items() for arg in ("--set", f"{key}={value}")]
    done = helm(node, "install", RELEASE, str(REPO / "charts" / "warmstart"), *sets,
                "--wait", "--timeout", "300s")
    assert done.returncode == 0, (done.stdout, done.stderr, describe(node))


def helm(node: LocalCluster, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([node.info.helm, "--kubeconfig", str(node.kubeconfig),
                           "--namespace", NS, *args],
                          capture_output=True, text=True, timeout=330, check=False)


def describe(node: LocalCluster) -> str:
    """What a person debugging a stuck step would look at first."""
    pods = node.kubectl("-n", NS, "get", "pods", "-o", "wide", check=False).stdout
    events = node.kubectl("-n", NS, "get", "events", "--sort-by=.lastTimestamp",
                          check=False).stdout
    return f"{pods}\n{events[-4000:]}"


def publish_tiny_lineage(node: LocalCluster, tmp_path: Path, private: bytes) -> TinyLineage:
    """The tiny base, signed with `private` (as its publisher would), and a small data window."""
    from warmstart_trainer.publish import publish_base

    node.s3_client().create_bucket(Bucket=BUCKET)
    store = Storage(S3Settings.from_env(node.s3_env()))
    base_uri = f"s3://{BUCKET}/reviews/base/"
    _, digest = publish_base(store, make_tiny_base(tmp_path / "base"), base_uri,
                             lineage="reviews")
    key_file = tmp_path / "signing.key"
    key_file.write_bytes(private)
    base = record.ensure_prefix(base_uri)
    store.put_bytes(signing.signature_uri(base),
                    signing.sign_manifest(store.read_manifest(base), "base", key_file))
    uris = {}
    for key, rows in {"week1-train": sentiment_rows(64, seed=1),
                      "week1-val": sentiment_rows(16, seed=2),
                      "holdout": sentiment_rows(24, seed=9)}.items():
        uris[key] = f"s3://{BUCKET}/data/{key}.jsonl"
        store.put_bytes(uris[key], jsonl(rows))
    return TinyLineage(BUCKET, base_uri, digest, uris, store)


def serving_objects() -> list[dict[str, Any]]:
    """The example serving Deployment, pointed at the image built here, and its Service."""
    deployment = yaml.safe_load((REPO / "examples" / "serving" / "deployment.yaml").read_text())
    deployment["metadata"]["name"] = SERVER
    deployment["metadata"]["labels"] = {"app": SERVER, "warmstart.dev/lineage": "reviews"}
    template = deployment["spec"]["template"]
    deployment["spec"]["selector"]["matchLabels"] = template["metadata"]["labels"] = {
        "app": SERVER}
    server = template["spec"]["containers"][0]
    server["image"] = TRAINER_IMAGE
    server["imagePullPolicy"] = "IfNotPresent"
    server["command"][server["command"].index("--model-name") + 1] = "reviews"
    # Two cores shared with other work: the example's generous request would not fit.
    server["resources"]["requests"] = {"cpu": "100m", "memory": "512Mi"}
    service = {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": SERVER},
        "spec": {"selector": {"app": SERVER}, "ports": [{"port": 80, "targetPort": "http"}]},
    }
    return [deployment, service]


def client_pod(name: str, script: str) -> dict[str, Any]:
    """A pod from the trainer image running `python -c script`, as restricted as any."""
    return demo_workloads.script_pod(name, script, NS)


PREDICT = f"""
import json, time, urllib.request
body = json.dumps({{"inputs": [{{"name": "text", "shape": [1], "datatype": "BYTES",
                                 "data": ["a truly wonderful film"]}}]}}).encode()
url = "http://{SERVER}.{NS}.svc.cluster.local/v2/models/reviews/infer"
metrics = "http://{RELEASE}-metrics.{NS}.svc.cluster.local:8080/metrics"
for attempt in range(60):
    try:
        request = urllib.request.Request(url, data=body,
                                         headers={{"Content-Type": "application/json"}})
        with urllib.request.urlopen(request, timeout=30) as resp:
            print("ANSWER " + resp.read().decode())
        with urllib.request.urlopen(metrics, timeout=30) as resp:
            for line in resp.read().decode().splitlines():
                if line.startswith(("warmstart_promotions_total", "warmstart_rollbacks_total")):
                    print("METRIC " + line)
        break
    except OSError as exc:
        print("retry", exc, flush=True)
        time.sleep(1)
"""


def listeners() -> set[str]:
    """Every listening TCP address:port on the machine."""
    out = subprocess.run(["ss", "-ltnH"], capture_output=True, text=True, check=True).stdout
    return {line.split()[3] for line in out.splitlines()}


def test_only_the_s3_gateway_faces_the_pods(node: LocalCluster) -> None:
    weed = next(Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                for pid in processes.marked_pids(node.state_dir)
                if Path(f"/proc/{pid}/comm").read_text().strip() == "weed")
    ports = {arg.split("=")[0]: arg.split("=")[1] for arg in (a.decode() for a in weed)
             if arg.startswith(("-master.port=", "-volume.port=", "-filer.port=", "-s3.port="))}
    listening = listeners()
    assert f"{network.NODE_IP}:{ports['-s3.port']}" in listening, (ports, listening)
    # Master, volume and filer answer without credentials: loopback only.
    for flag in ("-master.port", "-volume.port", "-filer.port"):
        assert {a for a in listening if a.endswith(f":{ports[flag]}")} == {
            f"127.0.0.1:{ports[flag]}"}, (flag, listening)


METRIC_LABELS = f'{{lineage="reviews",namespace="{NS}"}}'


def predict_through_the_service(node: LocalCluster, pod: str) -> str:
    """A prediction by week1 through the Service's DNS name, from a pod; what it printed."""
    node.apply(client_pod(pod, PREDICT))
    wait_for(f"the prediction pod {pod} to finish",
             lambda: node.pod_phase(NS, pod) in {"Succeeded", "Failed"}, timeout=180)
    said = logs(node, pod)
    answers = [line for line in said.splitlines() if line.startswith("ANSWER ")]
    assert answers, (said, describe(node))
    answer = json.loads(answers[-1].removeprefix("ANSWER "))
    assert answer["model_version"] == "reviews-week1", answer
    label = next(o for o in answer["outputs"] if o["name"] == "label")
    assert label["data"][0] in LABELS, answer
    return said


def logs(node: LocalCluster, *selector: str) -> str:
    return node.kubectl("-n", NS, "logs", *selector, "--tail=-1", check=False).stdout


def test_the_warm_start_story_on_a_real_node(node: LocalCluster, tmp_path: Path) -> None:
    install_chart(node)
    operator = f"deployment/{RELEASE}"
    wait_for("the operator pod to say it started",
             lambda: "warmstart operator started" in logs(node, operator), timeout=120)
    operator_pod = json.loads(node.kubectl(
        "-n", NS, "get", "pods", "-l", "app.kubernetes.io/component=operator",
        "-o", "json").stdout)["items"][0]
    assert operator_pod["spec"]["containers"][0]["image"] == OPERATOR_IMAGE
    assert operator_pod["status"]["containerStatuses"][0]["ready"] is True

    key = signing.generate_private_key_pem()
    lineage = publish_tiny_lineage(node, tmp_path, key)
    # The Secret's endpoint is the S3 server on the node's bridge address, as pods see it.
    assert node.s3_env()["AWS_ENDPOINT_URL"].startswith(f"http://{network.NODE_IP}:")
    s3_secret(node, NS)
    node.kubectl("-n", NS, "create", "secret", "generic", "reviews-signing",
                 f"--from-literal={signing.SIGNING_KEY_SECRET_KEY}={key.decode()}")
    node.apply(*({**doc, "metadata": {**doc["metadata"], "namespace": NS}}
                  for doc in serving_objects()))
    api = Api(node, NS)
    # Signed versions: the trainer pod reads the key from a Secret volume as the image's
    # non-root user; the server verifies before it reports ready.
    trust = {"secretRef": {"name": "reviews-signing"}, "trustedKeys": [
        {"name": "story", "publicKey": signing.public_key_pem(key).decode()}]}
    api.create("modellineages", lineage_manifest("reviews", lineage, serving=SERVER,
                                                 signing=trust))
    wait_for("base registered", lambda: api.lineage_status().get("versions"), timeout=120)
    api.create("warmstartjobs", wsj_manifest(
        "reviews-week1", lineage, "week1",
        training={"maxEpochs": 1, "batchSize": 16, "learningRate": 0.003,
                  "maxSeqLength": 32, "seed": 7},
        # Enforced as a cgroup limit on this node: torch and the tiny model fit.
        resources={"requests": {"cpu": "500m", "memory": "512Mi"},
                   "limits": {"memory": "2Gi"}}))

    # Bad input, beside week1: an image no registry has ends Failed, the pull named
    # (after the operator's pull grace, 15 s here), instead of Training forever.
    api.create("warmstartjobs", wsj_manifest("reviews-missing", lineage, "week1",
                                             image=MISSING_IMAGE))
    # The version the rollback step breaks, trained beside week1 to save time; Manual: it
    # serves only when pinned.
    api.create("warmstartjobs", wsj_manifest(
        "reviews-broken", lineage, "week1", promotion="Manual",
        training={"maxEpochs": 1, "batchSize": 16, "learningRate": 0.003,
                  "maxSeqLength": 32, "seed": 3},
        resources={"requests": {"cpu": "200m", "memory": "512Mi"},
                   "limits": {"memory": "2Gi"}}))

    def trainer_pod() -> dict[str, Any] | None:
        pods = json.loads(node.kubectl("-n", NS, "get", "pods", "-l",
                                       "job-name=reviews-week1-train", "-o", "json").stdout)
        return pods["items"][0] if pods["items"] else None

    pod = wait_for("the training Job's pod", trainer_pod, timeout=120)
    assert pod["spec"]["containers"][0]["image"] == TRAINER_IMAGE
    phase = api.finished("reviews-week1")
    trained = logs(node, pod["metadata"]["name"])
    assert phase == "Succeeded", (api.get("warmstartjobs", "reviews-week1").get("status"),
                                  trained[-3000:], describe(node))
    assert re.search(r"loaded \w+ from parent base \(warm start\)", trained), trained[-3000:]
    assert "committed version reviews-week1" in trained, trained[-3000:]
    assert "signed version reviews-week1" in trained, trained[-3000:]

    api.serving("reviews-week1", timeout=300)
    node.kubectl("-n", NS, "rollout", "status", f"deployment/{SERVER}", "--timeout=300s",
                 timeout=330)
    said = predict_through_the_service(node, "predict")
    # The operator's metrics through the chart's Service, from a pod as Prometheus would.
    assert f"METRIC warmstart_promotions_total{METRIC_LABELS} 1.0" in said, said

    # The kubelet really probed the operator's health endpoint all along: no restart.
    operator_pod = json.loads(node.kubectl("-n", NS, "get", "pod",
                                           operator_pod["metadata"]["name"], "-o", "json").stdout)
    assert operator_pod["status"]["containerStatuses"][0]["restartCount"] == 0, describe(node)

    roll_back_a_version_that_cannot_start(node, api, lineage, SERVER,
                                          lambda: describe(node))
    said = predict_through_the_service(node, "predict-after-rollback")
    assert f"METRIC warmstart_rollbacks_total{METRIC_LABELS} 1.0" in said, said

    pull = api.failed_condition("reviews-missing")
    assert pull["reason"] == "ImagePullFailed", pull
    assert f"image '{MISSING_IMAGE}' cannot be pulled (" in pull["message"], pull
    assert api.lineage_status()["servingVersion"] == "reviews-week1"

    operator_log = logs(node, operator)
    assert "Forbidden" not in operator_log, operator_log[-3000:]
    assert "Traceback" not in operator_log, operator_log[-3000:]
    # Kopf's finalizers go with the objects while the operator still runs.
    node.kubectl("-n", NS, "delete", "warmstartjobs,modellineages", "--all", "--wait=true",
                 "--timeout=100s", timeout=120)
    done = helm(node, "uninstall", RELEASE, "--wait", "--timeout", "120s")
    assert done.returncode == 0, (done.stdout, done.stderr)
