"""The Kubernetes API as the reconcilers use it: a Protocol, so the reconcilers run against
the real client (kube.Kube) in the operator and an in-memory fake in the unit tests."""

from __future__ import annotations

from typing import Any, Protocol


class KubeError(Exception):
    """An API call failed for a reason other than the ones below."""


class NotFound(KubeError):
    pass


class Conflict(KubeError):
    pass


class PermissionDenied(KubeError):
    """The operator's ServiceAccount lacks an RBAC rule; the message names it."""


class Cluster(Protocol):
    def get_lineage(self, namespace: str, name: str) -> dict[str, Any] | None: ...

    def get_wsj(self, namespace: str, name: str) -> dict[str, Any] | None: ...

    def create_wsj(self, namespace: str, body: dict[str, Any]) -> dict[str, Any] | None: ...

    def delete_wsj(self, namespace: str, name: str) -> None: ...

    def replace_status(self, plural: str, obj: dict[str, Any],
                       status: dict[str, Any]) -> dict[str, Any]:
        """PUT of the status subresource guarded by obj's resourceVersion (Conflict if the
        object changed since it was read)."""
        ...

    def get_secret_data(self, namespace: str, name: str) -> dict[str, str] | None: ...

    def get_job(self, namespace: str, name: str) -> dict[str, Any] | None: ...

    def create_job(self, body: dict[str, Any]) -> dict[str, Any] | None: ...

    def patch_job(self, namespace: str, name: str, patch: dict[str, Any]) -> None: ...

    def create_configmap(self, body: dict[str, Any]) -> dict[str, Any] | None: ...

    def job_pods(self, namespace: str, job_name: str) -> list[dict[str, Any]]: ...

    def get_deployment(self, namespace: str, name: str) -> dict[str, Any] | None: ...

    def apply_deployment(self, namespace: str, name: str, body: dict[str, Any],
                         field_manager: str) -> dict[str, Any]: ...

    def post_event(self, obj: dict[str, Any], event_type: str, reason: str, message: str,
                   component: str) -> None: ...
