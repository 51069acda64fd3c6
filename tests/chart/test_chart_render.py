"""The chart without a cluster: lint, what it renders in both RBAC modes, the values schema,
and the CRD copies."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart import crdsync
from tests.chart.conftest import CHART, KUBE_VERSION, Helm, Manifest, find, one, rule_table

# What the operator may do in a namespace it serves (Kopf's needs and its own, merged).
# Widening this is a decision: change it here, and say why beside the rule in _helpers.tpl.
NAMESPACED_RULES = {
    ("warmstart.dev", "warmstartjobs"): {"get", "list", "watch", "create", "delete", "patch"},
    ("warmstart.dev", "modellineages"): {"get", "list", "watch", "patch"},
    ("warmstart.dev", "warmstartjobs/status"): {"patch"},
    ("warmstart.dev", "modellineages/status"): {"update"},
    ("warmstart.dev", "warmstartjobs/finalizers"): {"update"},
    ("batch", "jobs"): {"get", "list", "watch", "create", "patch"},
    ("", "configmaps"): {"create"},
    ("", "secrets"): {"get"},
    ("", "pods"): {"list"},
    ("apps", "deployments"): {"get", "patch"},
    ("events.k8s.io", "events"): {"create"},
}
CRD_DISCOVERY = {("apiextensions.k8s.io", "customresourcedefinitions"): {"list", "watch"}}
NAMESPACE_WATCH = {("", "namespaces"): {"list", "watch"}}


def env_of(deployment: Manifest) -> dict[str, Any]:
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


@pytest.mark.parametrize("values", [
    [],
    ["--set", "watchNamespaces={team-a,team-b}"],
    ["--set", "metrics.serviceMonitor.enabled=true", "--set", "crds.keep=false"],
], ids=["defaults", "watch-namespaces", "servicemonitor"])
def test_lint_strict(helm: Helm, values: list[str]) -> None:
    result = helm.run("lint", "--strict", str(CHART), "--kube-version", KUBE_VERSION, *values,
                      check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[WARNING]" not in result.stdout and "[ERROR]" not in result.stdout, result.stdout


def test_defaults_render_a_cluster_wide_operator(helm: Helm) -> None:
    docs = helm.template()
    kinds = sorted(d["kind"] for d in docs)
    assert kinds == sorted([
        "ServiceAccount", "ClusterRole", "ClusterRole", "ClusterRole", "ClusterRoleBinding",
        "Service", "Deployment", "CustomResourceDefinition", "CustomResourceDefinition",
        "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"])
    role = one(docs, "ClusterRole", "ws-warmstart")
    assert rule_table(role["rules"]) == NAMESPACED_RULES | CRD_DISCOVERY
    binding = one(docs, "ClusterRoleBinding", "ws-warmstart")
    assert binding["roleRef"]["name"] == "ws-warmstart"
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "ws-warmstart", "namespace": "ops"}]

    deployment = one(docs, "Deployment", "ws-warmstart", "ops")
    spec = deployment["spec"]
    assert spec["replicas"] == 1 and spec["strategy"] == {"type": "Recreate"}
    pod = spec["template"]["spec"]
    assert pod["serviceAccountName"] == "ws-warmstart"
    assert pod["automountServiceAccountToken"] is True
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    [container] = pod["containers"]
    assert container["command"] == ["python", "-m", "warmstart_operator"]
    assert container["args"] == ["--liveness=http://$(WARMSTART_LISTEN_ADDRESS):8081/healthz"]
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}} in pod["volumes"]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http-healthz"}
    env = env_of(deployment)
    assert env["WARMSTART_LISTEN_ADDRESS"] == {"fieldRef": {"fieldPath": "status.podIP"}}
    assert env["WARMSTART_METRICS_ADDRESS"] == "$(WARMSTART_LISTEN_ADDRESS)"
    assert env["WARMSTART_NAMESPACES"] == ""
    assert env["WARMSTART_TRAINER_IMAGE"] == "ghcr.io/warmstart-dev/trainer:0.1.0"
    assert env["WARMSTART_TRAINER_COMMAND"] == "python -m warmstart_trainer"
    assert env["WARMSTART_MAX_ACTIVE_PER_LINEAGE"] == "1"

    service = one(docs, "Service", "ws-warmstart-metrics", "ops")
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert service["spec"]["ports"][0]["targetPort"] == "http-metrics"
    assert not find(docs, "ServiceMonitor")


def test_watch_namespaces_render_roles_in_each(helm: Helm) -> None:
    docs = helm.template("--set", "watchNamespaces={team-a,team-b}")
    for namespace in ("team-a", "team-b"):
        role = one(docs, "Role", "ws-warmstart", namespace)
        assert rule_table(role["rules"]) == NAMESPACED_RULES
        binding = one(docs, "RoleBinding", "ws-warmstart", namespace)
        assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                      "name": "ws-warmstart"}
        assert binding["subjects"][0]["namespace"] == "ops"
    # Cluster-wide, only what Kopf itself needs: nothing that reads or writes objects.
    cluster_role = one(docs, "ClusterRole", "ws-warmstart")
    assert rule_table(cluster_role["rules"]) == CRD_DISCOVERY | NAMESPACE_WATCH
    assert env_of(one(docs, "Deployment"))["WARMSTART_NAMESPACES"] == "team-a,team-b"


def test_settings_reach_the_operator(helm: Helm) -> None:
    docs = helm.template(
        "--set", "operator.trainer.image=registry.local/trainer@sha256:" + "a" * 64,
        "--set", "operator.trainer.command=/venv/bin/python -m warmstart_trainer",
        "--set", "operator.maxActivePerLineage=3", "--set", "operator.pollSeconds=2.5",
        "--set", "operator.verbose=true", "--set", "livenessProbe.enabled=false",
        "--set", "listenAddress=0.0.0.0", "--set", "metrics.port=9090",
        "--set", "image.digest=sha256:" + "b" * 64,
        "--set", "tolerations[0].key=gpu", "--set", "tolerations[0].operator=Exists",
        "--set", "affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"
                 ".nodeSelectorTerms[0].matchExpressions[0].key=pool",
        "--set", "affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"
                 ".nodeSelectorTerms[0].matchExpressions[0].operator=Exists")
    deployment = one(docs, "Deployment")
    env = env_of(deployment)
    assert env["WARMSTART_TRAINER_IMAGE"] == "registry.local/trainer@sha256:" + "a" * 64
    assert env["WARMSTART_TRAINER_COMMAND"] == "/venv/bin/python -m warmstart_trainer"
    assert env["WARMSTART_MAX_ACTIVE_PER_LINEAGE"] == "3"
    assert env["WARMSTART_POLL_SECONDS"] == "2.5"
    assert env["WARMSTART_LISTEN_ADDRESS"] == "0.0.0.0"
    assert env["WARMSTART_METRICS_PORT"] == "9090"
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["image"] == "ghcr.io/warmstart-dev/operator@sha256:" + "b" * 64
    assert container["args"] == ["--verbose"]
    assert "livenessProbe" not in container
    assert pod["tolerations"] == [{"key": "gpu", "operator": "Exists"}]
    assert pod["affinity"]["nodeAffinity"]


@pytest.mark.parametrize(("values", "complaint"), [
    (["--set", "operator.maxActivePerLinage=2"], "maxActivePerLinage"),
    (["--set", "securityContext.readOnlyRootFileSystem=true"], "readOnlyRootFileSystem"),
    (["--set", "metrics.serviceMonitor.intervall=1m"], "intervall"),
    (["--set", "operator.pollSeconds=soon"], "pollSeconds"),
    (["--set", "watchNamespaces={Team_A}"], "watchNamespaces"),
], ids=["typo", "nested-typo", "deep-typo", "wrong-type", "bad-namespace"])
def test_schema_refuses_bad_values(helm: Helm, values: list[str], complaint: str) -> None:
    result = helm.run("template", "ws", str(CHART), "--kube-version", KUBE_VERSION, *values,
                      check=False)
    assert result.returncode != 0, "the chart rendered a value its schema should refuse"
    assert "values don't meet the specifications of the schema" in result.stderr, result.stderr
    assert complaint in result.stderr, result.stderr


def _open_objects(node: Any, path: str = "") -> list[str]:
    """Schema paths of objects that accept keys nobody declared."""
    found: list[str] = []
    if isinstance(node, dict):
        if node.get("type") == "object" and "additionalProperties" not in node:
            found.append(path or "/")
        if node.get("additionalProperties") is True:
            found.append(path or "/")
        for key, value in node.items():
            found += _open_objects(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _open_objects(value, f"{path}/{index}")
    return found


def test_schema_is_closed_at_every_level() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    # `global` is Helm's, shared with parent charts: it must accept anything.
    assert _open_objects(schema) == ["/properties/global"]


_KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z][\w.-]*):")
# Kubernetes objects passed through as they are: their fields are the API's, documented there.
_PASSTHROUGH = {"resources", "podSecurityContext", "securityContext", "nodeSelector"}


def test_every_value_is_commented() -> None:
    lines = (CHART / "values.yaml").read_text().splitlines()
    stack: list[tuple[int, str]] = []
    bare = []
    for number, line in enumerate(lines):
        match = _KEY.match(line)
        if not match:
            continue
        indent = len(match["indent"])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        parents = [key for _, key in stack]
        stack.append((indent, match["key"]))
        if parents and parents[0] in _PASSTHROUGH:
            continue
        above = next((lines[i].strip() for i in range(number - 1, -1, -1) if lines[i].strip()),
                     "")
        if not above.startswith("#"):
            bare.append(".".join([*parents, match["key"]]))
    assert not bare, f"values without a comment above them: {bare}"


def test_chart_crds_are_the_generated_crds() -> None:
    """Fails when crds/ was regenerated and the chart's copies were not (or were edited)."""
    expected = crdsync.expected()
    actual = {p: p.read_text() for p in crdsync.TEMPLATES.glob("crd-*.yaml")}
    assert sorted(actual) == sorted(expected), "run `python -m tests.chart.crdsync`"
    for path, text in expected.items():
        assert actual[path] == text, (
            f"{path.relative_to(crdsync.REPO)} differs from crds/: "
            "run `python -m tests.chart.crdsync`")


def test_rendered_crds_equal_the_generated_ones(helm: Helm) -> None:
    rendered = {d["metadata"]["name"]: d for d in find(helm.template(),
                                                       "CustomResourceDefinition")}
    sources = [yaml.safe_load(p.read_text()) for p in sorted(Path(crdsync.CRDS).glob("*.yaml"))]
    assert sorted(rendered) == sorted(s["metadata"]["name"] for s in sources)
    for source in sources:
        crd = rendered[source["metadata"]["name"]]
        assert crd["metadata"].pop("annotations") == {"helm.sh/resource-policy": "keep"}
        assert crd["metadata"].pop("labels")["app.kubernetes.io/part-of"] == "warmstart"
        assert crd == source


def test_crd_flags(helm: Helm) -> None:
    assert not find(helm.template("--set", "crds.enabled=false"), "CustomResourceDefinition")
    unkept = find(helm.template("--set", "crds.keep=false"), "CustomResourceDefinition")
    assert len(unkept) == 2
    assert all("annotations" not in crd["metadata"] for crd in unkept)


def test_service_monitor_behind_its_flag(helm: Helm) -> None:
    docs = helm.template("--set", "metrics.serviceMonitor.enabled=true",
                         "--set", "metrics.serviceMonitor.labels.release=prometheus")
    monitor = one(docs, "ServiceMonitor", "ws-warmstart", "ops")
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    service = one(docs, "Service", "ws-warmstart-metrics")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"][
        "labels"].items()
    assert monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"]
    refused = helm.run("template", "ws", str(CHART), "--kube-version", KUBE_VERSION,
                       "--set", "metrics.serviceMonitor.enabled=true",
                       "--set", "metrics.service.enabled=false", check=False)
    assert refused.returncode != 0 and "metrics.service.enabled" in refused.stderr
