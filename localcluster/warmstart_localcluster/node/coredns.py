"""CoreDNS as a Deployment with its Service, the way a cluster installer deploys it.

It answers for cluster.local only and has no `forward` block: a name outside the cluster
gets an error instead of a query sent off this machine.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from warmstart_localcluster.errors import ClusterError
from warmstart_localcluster.node import network
from warmstart_localcluster.node.images import COREDNS_IMAGE

NAMESPACE = "kube-system"
_PORT = 1053  # unprivileged: CoreDNS runs as non-root without capabilities

COREFILE = f""".:{_PORT} {{
    errors
    health 127.0.0.1:8080
    ready :8181
    kubernetes cluster.local in-addr.arpa ip6.arpa {{
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }}
    cache 30
}}
"""


def manifests() -> list[dict[str, Any]]:
    labels = {"k8s-app": "kube-dns"}
    meta = {"name": "coredns", "namespace": NAMESPACE}
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
         "metadata": {"name": "system:coredns"},
         "rules": [
             {"apiGroups": [""], "resources": ["endpoints", "services", "pods", "namespaces"],
              "verbs": ["list", "watch"]},
             {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"],
              "verbs": ["list", "watch"]},
         ]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": "system:coredns"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                     "name": "system:coredns"},
         "subjects": [{"kind": "ServiceAccount", **meta}]},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta,
         "data": {"Corefile": COREFILE}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {**meta, "labels": labels},
         "spec": {
             "replicas": 1,
             "selector": {"matchLabels": labels},
             "template": {"metadata": {"labels": labels}, "spec": {
                 "serviceAccountName": "coredns",
                 "dnsPolicy": "Default",
                 "priorityClassName": "system-cluster-critical",
                 "securityContext": {"runAsNonRoot": True, "runAsUser": 65535,
                                     "seccompProfile": {"type": "RuntimeDefault"}},
                 "containers": [{
                     "name": "coredns",
                     "image": COREDNS_IMAGE,
                     "imagePullPolicy": "Never",
                     "args": ["-conf", "/etc/coredns/Corefile"],
                     "ports": [{"containerPort": _PORT, "protocol": "UDP", "name": "dns"},
                               {"containerPort": _PORT, "protocol": "TCP", "name": "dns-tcp"}],
                     "readinessProbe": {"httpGet": {"path": "/ready", "port": 8181},
                                        "periodSeconds": 2},
                     "resources": {"limits": {"memory": "128Mi"},
                                   "requests": {"cpu": "10m", "memory": "32Mi"}},
                     "securityContext": {"allowPrivilegeEscalation": False,
                                         "readOnlyRootFilesystem": True,
                                         "capabilities": {"drop": ["ALL"]}},
                     "volumeMounts": [{"name": "config", "mountPath": "/etc/coredns"}],
                 }],
                 "volumes": [{"name": "config", "configMap": {"name": "coredns"}}],
             }},
         }},
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": "kube-dns", "namespace": NAMESPACE, "labels": labels},
         "spec": {"clusterIP": network.DNS_SERVICE_IP, "selector": labels, "ports": [
             {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": _PORT},
             {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": _PORT},
         ]}},
    ]


def apply(kubectl: Path, kubeconfig: Path) -> None:
    docs = yaml.safe_dump_all(manifests(), sort_keys=False)
    result = subprocess.run(
        [str(kubectl), f"--kubeconfig={kubeconfig}", "apply", "-f", "-"],
        input=docs, capture_output=True, text=True, check=False,
    )
    if result.returncode != 0:
        raise ClusterError(f"applying CoreDNS failed: {result.stderr.strip()}")
