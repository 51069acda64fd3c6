"""The serving Deployment as the operator reads and patches it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from warmstart.api.modellineage import LineageVersion, Serving
from warmstart_operator import builders, failpoints
from warmstart_operator.cluster import Cluster

MODEL_VERSION_ANNOTATION = "warmstart.dev/model-version"


def rollout_state(deployment: dict[str, Any]) -> str:
    """complete | progressing | failed, from a Deployment's spec and status."""
    spec, status = deployment.get("spec") or {}, deployment.get("status") or {}
    replicas = int(spec.get("replicas", 1))
    if int(status.get("observedGeneration", 0)) < int(deployment["metadata"]["generation"]):
        # The status still describes the previous template: right after a rollback its
        # ProgressDeadlineExceeded belongs to the version just rolled away from.
        return "progressing"
    for c in status.get("conditions") or []:
        if c.get("type") == "Progressing" and c.get("reason") == "ProgressDeadlineExceeded":
            return "failed"
    done = (
        int(status.get("updatedReplicas", 0)) == replicas
        and int(status.get("availableReplicas", 0)) >= replicas
        and int(status.get("replicas", 0)) == replicas
        and not status.get("unavailableReplicas")
    )
    return "complete" if done else "progressing"


def applied_version(deployment: dict[str, Any]) -> str | None:
    template = (deployment.get("spec") or {}).get("template") or {}
    value = ((template.get("metadata") or {}).get("annotations") or {}).get(
        MODEL_VERSION_ANNOTATION)
    return str(value) if value else None


def apply_version(kube: Cluster, namespace: str, serving: Serving, entry: LineageVersion,
                  field_manager: str, extra_env: list[dict[str, str]] | None = None
                  ) -> Callable[[], None]:
    """The one place a rollout patches the Deployment (run after the status is written)."""
    assert entry.manifest_digest

    def apply() -> None:
        body = builders.serving_patch(
            serving.deployment_ref.name, serving.container, serving.model_uri_env,
            serving.model_digest_env, entry.name, entry.uri, str(entry.manifest_digest),
            extra_env)
        kube.apply_deployment(namespace, serving.deployment_ref.name, body, field_manager)
        failpoints.crash_point(failpoints.AFTER_DEPLOYMENT_APPLIED)

    return apply
