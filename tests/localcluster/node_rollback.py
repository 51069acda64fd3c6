"""One step of the real-node story (test_node_story.py): a version the server cannot
start is rolled back by the operator, on the real kubelet."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from tests.conftest import LocalCluster, wait_for
from tests.operator.kit import Api, TinyLineage

REVISION = "deployment.kubernetes.io/revision"


def roll_back_a_version_that_cannot_start(node: LocalCluster, api: Api, lineage: TinyLineage,
                                          server: str, describe: Callable[[], str]) -> None:
    """Issue 17's sequence on the real kubelet (tests/operator/test_story.py checks the
    same): a recorded candidate whose weights are altered in storage is pinned; the server
    pod refuses it and never becomes ready; after progressDeadlineSeconds (45 s here: the
    refusal is seen in the pod's log before the rollback deletes the pod) the operator rolls
    back to week1, says so, and stays there."""
    assert api.finished("reviews-broken") == "Succeeded", describe()
    assert api.version("reviews-broken")["phase"] == "Candidate"
    weights = lineage.uri("reviews/reviews-broken/model.safetensors")
    data = bytearray(lineage.store.get_bytes(weights))
    data[len(data) // 2] ^= 0xFF
    lineage.store.put_bytes(weights, bytes(data))
    revision = int(deployment(node, api.ns, server)["metadata"]["annotations"][REVISION])
    api.patch_lineage({"pinnedVersion": "reviews-broken",
                       "serving": {"progressDeadlineSeconds": 45}})
    wait_for("the Deployment to name the broken version",
             lambda: api.deployment_version() == "reviews-broken", timeout=60)

    def refusing() -> str | None:
        """The broken version's pod, once the kubelet runs it and the server refused it."""
        pods = json.loads(node.kubectl("-n", api.ns, "get", "pods", "-l", f"app={server}",
                                       "-o", "json").stdout)["items"]
        for pod in pods:
            if "reviews-broken" not in json.dumps(pod["spec"]["containers"][0].get("env")):
                continue
            assert not any(c.get("ready") for c in pod["status"].get(
                "containerStatuses") or []), pod["status"]
            said = node.kubectl("-n", api.ns, "logs", pod["metadata"]["name"],
                                check=False).stdout
            return said if "refused to serve" in said else None
        return None

    started = time.monotonic()
    refusal = wait_for("the server to refuse the broken version", refusing, timeout=90)
    refused = time.monotonic() - started
    assert "model.safetensors" in refusal, refusal[-2000:]
    wait_for("the broken version to be rolled back",
             lambda: api.version("reviews-broken")["phase"] == "RolledBack", timeout=120)
    wait_for("the rollback to complete", lambda: next(
        c for c in api.lineage_status()["conditions"] if c["type"] == "Progressing"
    )["reason"] == "RollbackComplete", timeout=120)
    print(f"refused after {refused:.0f} s, rolled back after "
          f"{time.monotonic() - started:.0f} s")
    status = api.lineage_status()
    assert status["servingVersion"] == "reviews-week1", status
    degraded = next(c for c in status["conditions"] if c["type"] == "Degraded")
    assert degraded["status"] == "True" and degraded["reason"] == "RolledBack", degraded
    assert "rolled back to reviews-week1" in degraded["message"], degraded
    node.kubectl("-n", api.ns, "rollout", "status", f"deployment/{server}", "--timeout=120s",
                 timeout=150)
    # It stays: no second rollout that nobody asked for.
    time.sleep(5)
    reasons = [e["reason"] for e in sorted(json.loads(node.kubectl(
        "-n", api.ns, "get", "events", "--field-selector", "involvedObject.name=reviews",
        "-o", "json").stdout)["items"], key=lambda e: (
            e.get("eventTime") or e.get("firstTimestamp"), e["metadata"]["name"]))]
    assert reasons[reasons.index("RolledBack") - 1:] == [
        "RollingOut", "RolledBack", "RollbackComplete"], reasons
    assert api.deployment_version() == "reviews-week1"
    served = deployment(node, api.ns, server)
    # Back on week1's ReplicaSet (a rollback to an earlier template takes the next revision
    # number), and every replica ready.
    assert int(served["metadata"]["annotations"][REVISION]) == revision + 2, (
        revision, served["metadata"]["annotations"])
    assert served["status"].get("readyReplicas") == served["spec"]["replicas"], served["status"]


def deployment(node: LocalCluster, namespace: str, name: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(node.kubectl("-n", namespace, "get", "deployment", name,
                                                    "-o", "json").stdout)
    return found
