"""The local cluster drives real Jobs, Deployments and RBAC through its real node: kubelet,
containerd and runc run the trainer image built here."""

from __future__ import annotations

import ipaddress
import json
import uuid
from typing import Any

import pytest
from kubernetes import client

from tests.conftest import TRAINER_IMAGE, LocalCluster, processes_with, wait_for
from warmstart_localcluster.node import network


def job(name: str, script: str, image: str, **pod_extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{
                        "name": "main",
                        "image": image,
                        "command": ["python", "-c", script],
                    }],
                    **pod_extra,
                }
            },
        },
    }


def job_condition(batch: client.BatchV1Api, ns: str, name: str) -> str | None:
    status = batch.read_namespaced_job_status(name, ns).status
    for cond in status.conditions or []:
        if cond.type in ("Complete", "Failed") and cond.status == "True":
            return str(cond.type)
    return None


def job_pods(core: client.CoreV1Api, ns: str, name: str) -> list[client.V1Pod]:
    return list(core.list_namespaced_pod(ns, label_selector=f"job-name={name}").items)


def test_job_succeeds_and_termination_message_is_readable(
    kube: client.ApiClient, namespace: str
) -> None:
    batch, core = client.BatchV1Api(kube), client.CoreV1Api(kube)
    script = (
        "import json; open('/dev/termination-log','w').write(json.dumps({'answer': 42}))"
    )
    batch.create_namespaced_job(namespace, job("hello", script, TRAINER_IMAGE))
    assert wait_for("job to finish", lambda: job_condition(batch, namespace, "hello")) == (
        "Complete"
    )
    (pod,) = job_pods(core, namespace, "hello")
    terminated = pod.status.container_statuses[0].state.terminated
    assert terminated.exit_code == 0
    assert terminated.reason == "Completed"
    assert json.loads(terminated.message) == {"answer": 42}
    assert pod.status.phase == "Succeeded"


def test_failing_pod_fails_its_job_with_exit_code(kube: client.ApiClient, namespace: str
) -> None:
    batch, core = client.BatchV1Api(kube), client.CoreV1Api(kube)
    batch.create_namespaced_job(namespace, job("boom", "import sys; sys.exit(3)",
                                               TRAINER_IMAGE))
    assert wait_for("job to fail", lambda: job_condition(batch, namespace, "boom")) == "Failed"
    (pod,) = job_pods(core, namespace, "boom")
    terminated = pod.status.container_statuses[0].state.terminated
    assert terminated.exit_code == 3
    assert terminated.reason == "Error"
    assert pod.status.phase == "Failed"


def test_env_from_secret_and_configmap_volume_and_readonly_root(
    kube: client.ApiClient, namespace: str
) -> None:
    batch, core = client.BatchV1Api(kube), client.CoreV1Api(kube)
    core.create_namespaced_secret(namespace, {"metadata": {"name": "creds"},
                                              "stringData": {"token": "s3cr3t"}})
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "cfg"},
                                                  "data": {"spec.json": '{"epochs": 2}'}})
    script = """
import json, os
spec = json.load(open('/etc/warmstart/spec.json'))
try:
    open('/should-not-exist', 'w')
    root = 'writable'
except OSError as e:
    root = 'read-only' if e.errno == 30 else str(e)
open('/scratch/x', 'w').write('ok')
out = {'token': os.environ['TOKEN'], 'epochs': spec['epochs'], 'root': root,
       'pod': os.environ['POD_NAME'], 'ip': os.environ['POD_IP'],
       'scratch': open('/scratch/x').read()}
open('/dev/termination-log', 'w').write(json.dumps(out))
"""
    manifest = job(
        "envs", script, TRAINER_IMAGE,
        volumes=[{"name": "cfg", "configMap": {"name": "cfg"}},
                 {"name": "scratch", "emptyDir": {}}],
    )
    container = manifest["spec"]["template"]["spec"]["containers"][0]
    container["env"] = [
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}},
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
    ]
    container["volumeMounts"] = [
        {"name": "cfg", "mountPath": "/etc/warmstart", "readOnly": True},
        {"name": "scratch", "mountPath": "/scratch"},
    ]
    container["securityContext"] = {"readOnlyRootFilesystem": True, "runAsNonRoot": False}
    batch.create_namespaced_job(namespace, manifest)
    assert wait_for("job to finish", lambda: job_condition(batch, namespace, "envs")) == (
        "Complete"
    )
    (pod,) = job_pods(core, namespace, "envs")
    result = json.loads(pod.status.container_statuses[0].state.terminated.message)
    assert result["token"] == "s3cr3t"
    assert result["epochs"] == 2
    assert result["root"] == "read-only"
    assert result["scratch"] == "ok"
    assert result["pod"] == pod.metadata.name
    assert result["ip"] == pod.status.pod_ip
    assert ipaddress.ip_address(result["ip"]) in ipaddress.IPv4Network(network.POD_SUBNET)
    assert result["ip"] != network.NODE_IP


def test_missing_secret_keeps_pod_waiting_with_reason(
    kube: client.ApiClient, namespace: str
) -> None:
    batch, core = client.BatchV1Api(kube), client.CoreV1Api(kube)
    manifest = job("nosecret", "print('never')", TRAINER_IMAGE)
    manifest["spec"]["template"]["spec"]["containers"][0]["env"] = [
        {"name": "X", "valueFrom": {"secretKeyRef": {"name": "absent", "key": "k"}}}]
    batch.create_namespaced_job(namespace, manifest)

    def waiting_reason() -> str | None:
        pods = job_pods(core, namespace, "nosecret")
        statuses = pods[0].status.container_statuses if pods else None
        # A kubelet says ContainerCreating while it makes the pod's sandbox: not the answer.
        if not statuses or not statuses[0].state.waiting or (
                statuses[0].state.waiting.reason == "ContainerCreating"):
            return None
        return f"{statuses[0].state.waiting.reason}: {statuses[0].state.waiting.message}"

    reason = wait_for("CreateContainerConfigError", waiting_reason, timeout=30)
    assert reason.startswith("CreateContainerConfigError")
    assert "absent" in reason


def deployment(name: str, script: str, image: str,
               progress_deadline: int = 600) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 2,
            "progressDeadlineSeconds": progress_deadline,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{
                    "name": "web",
                    "image": image,
                    "command": ["python", "-c", script],
                    "env": [{"name": "POD_IP",
                             "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
                    "ports": [{"name": "http", "containerPort": 8080}],
                    "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"},
                                       "periodSeconds": 1},
                }]},
            },
        },
    }


SERVER = """
import http.server, os
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        code = 200 if {ready} else 503
        self.send_response(code); self.end_headers(); self.wfile.write(b'hi')
http.server.HTTPServer((os.environ['POD_IP'], 8080), H).serve_forever()
"""


def deployment_condition(apps: client.AppsV1Api, ns: str, name: str, kind: str) -> Any:
    status = apps.read_namespaced_deployment_status(name, ns).status
    for cond in status.conditions or []:
        if cond.type == kind:
            return cond
    return None


def test_deployment_with_readiness_probe_becomes_available(
    kube: client.ApiClient, namespace: str
) -> None:
    apps, core = client.AppsV1Api(kube), client.CoreV1Api(kube)
    apps.create_namespaced_deployment(namespace, deployment("web", SERVER.format(ready="True"),
                                                           TRAINER_IMAGE))

    def available() -> bool:
        cond = deployment_condition(apps, namespace, "web", "Available")
        status = apps.read_namespaced_deployment_status("web", namespace).status
        return bool(cond and cond.status == "True" and status.available_replicas == 2)

    wait_for("deployment available", available)
    pods = core.list_namespaced_pod(namespace, label_selector="app=web").items
    ips = {p.status.pod_ip for p in pods}
    assert len(ips) == 2, "each replica has its own address"
    import urllib.request

    for ip in ips:
        with urllib.request.urlopen(f"http://{ip}:8080/ready", timeout=5) as resp:
            assert resp.read() == b"hi"


def test_deployment_never_ready_reports_progress_deadline_exceeded(
    kube: client.ApiClient, namespace: str
) -> None:
    apps = client.AppsV1Api(kube)
    apps.create_namespaced_deployment(
        namespace, deployment("stuck", SERVER.format(ready="False"), TRAINER_IMAGE,
                              progress_deadline=8)
    )

    def deadline_exceeded() -> Any:
        cond = deployment_condition(apps, namespace, "stuck", "Progressing")
        return cond if cond and cond.reason == "ProgressDeadlineExceeded" else None

    cond = wait_for("ProgressDeadlineExceeded", deadline_exceeded, timeout=60)
    assert cond.status == "False"
    status = apps.read_namespaced_deployment_status("stuck", namespace).status
    assert not status.available_replicas


# The in-cluster API access any client does (the Service's address from the environment,
# the mounted token and CA), in the standard library: the trainer image has no Kubernetes
# client.
RBAC_SCRIPT = """
import json, os, ssl, urllib.error, urllib.request
sa = '/var/run/secrets/kubernetes.io/serviceaccount/'
ns, token = open(sa + 'namespace').read(), open(sa + 'token').read()
api = 'https://%s:%s' % (os.environ['KUBERNETES_SERVICE_HOST'],
                         os.environ['KUBERNETES_SERVICE_PORT'])
tls = ssl.create_default_context(cafile=sa + 'ca.crt')
out = {}
for what in ('configmaps', 'secrets'):
    req = urllib.request.Request('%s/api/v1/namespaces/%s/%s' % (api, ns, what),
                                 headers={'Authorization': 'Bearer ' + token})
    try:
        out[what] = urllib.request.urlopen(req, context=tls, timeout=30).status
    except urllib.error.HTTPError as e:
        out[what] = e.code
open('/dev/termination-log', 'w').write(json.dumps(out))
"""


def test_service_account_rbac_is_enforced(kube: client.ApiClient, namespace: str
) -> None:
    core, rbac, batch = client.CoreV1Api(kube), client.RbacAuthorizationV1Api(kube), \
        client.BatchV1Api(kube)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "reader"}})
    rbac.create_namespaced_role(namespace, {
        "metadata": {"name": "read-configmaps"},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]}],
    })
    rbac.create_namespaced_role_binding(namespace, {
        "metadata": {"name": "reader"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                    "name": "read-configmaps"},
        "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": namespace}],
    })
    batch.create_namespaced_job(namespace, job("rbac", RBAC_SCRIPT, TRAINER_IMAGE,
                                               serviceAccountName="reader"))
    assert wait_for("job to finish", lambda: job_condition(batch, namespace, "rbac")) == (
        "Complete"
    )
    (pod,) = job_pods(core, namespace, "rbac")
    result = json.loads(pod.status.container_statuses[0].state.terminated.message)
    assert result == {"configmaps": 200, "secrets": 403}


def test_kubectl_lists_nodes_and_pods(cluster: LocalCluster) -> None:
    out = cluster.kubectl("get", "nodes,pods", "-A", "-o", "name").stdout
    assert "node/warmstart-node" in out
    version = cluster.kubectl("version", "-o", "json").stdout
    assert json.loads(version)["serverVersion"]["gitVersion"] == "v1.34.4"


@pytest.mark.parametrize("policy", ["Never"])
def test_deleting_a_running_pod_stops_its_process(
    kube: client.ApiClient, namespace: str, cluster: LocalCluster, policy: str
) -> None:
    core = client.CoreV1Api(kube)
    token = f"sleeper-{uuid.uuid4().hex}"
    core.create_namespaced_pod(namespace, {
        "metadata": {"name": "sleeper"},
        "spec": {"restartPolicy": policy, "terminationGracePeriodSeconds": 2, "containers": [{
            "name": "main", "image": TRAINER_IMAGE,
            "command": ["python", "-c", "import time, os; print(os.getpid(), flush=True); "
                        f"time.sleep(600)  # {token}"],
        }]},
    })
    wait_for("pod running", lambda: core.read_namespaced_pod(
        "sleeper", namespace).status.phase == "Running")
    wait_for("pid in log", lambda: [
        line for line in cluster.pod_log(namespace, "sleeper").splitlines()
        if line.strip().isdigit()])
    pids = processes_with(token)
    assert pids, "the pod's process is not on this machine"
    core.delete_namespaced_pod("sleeper", namespace)

    def gone() -> bool:
        try:
            core.read_namespaced_pod("sleeper", namespace)
            return False
        except client.ApiException as exc:
            return bool(exc.status == 404)

    wait_for("pod deleted", gone, timeout=30)
    from warmstart_localcluster.processes import is_alive

    assert not any(is_alive(pid) for pid in pids)
    assert processes_with(token) == []
