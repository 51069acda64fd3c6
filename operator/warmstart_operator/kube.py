"""The operator's only door to the Kubernetes API (the storage layer).

Everything else works on plain dicts and pydantic models. API errors become the project's
own exceptions here, with messages that say what the operator lacked: a missing RBAC rule
shows up as a PermissionDenied naming the verb and resource, never as a silent stall.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from kubernetes import client, config
from kubernetes.client.rest import ApiException

from warmstart.api.constants import GROUP, MODELLINEAGE_PLURAL, VERSION, WARMSTARTJOB_PLURAL
from warmstart_operator.cluster import Conflict, KubeError, NotFound, PermissionDenied

log = logging.getLogger("warmstart.kube")

MERGE_PATCH = "application/merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"


# HTTP methods as RBAC names them, so a permission error reads like the missing rule.
_RBAC_VERB = {"get": "get", "post": "create", "put": "update", "patch": "patch",
              "delete": "delete"}


def _translate(exc: ApiException, verb: str, what: str) -> KubeError:
    verb = _RBAC_VERB.get(verb, verb)
    if exc.status == 404:
        return NotFound(f"{what} not found")
    if exc.status == 409:
        return Conflict(f"{verb} {what}: conflict")
    if exc.status == 403:
        return PermissionDenied(
            f"the operator may not {verb} {what} (403 Forbidden): its RBAC role lacks this rule"
        )
    body = ""
    try:
        body = json.loads(exc.body or "{}").get("message", "")
    except (ValueError, AttributeError):
        body = str(exc.body)[:300]
    return KubeError(f"{verb} {what} failed: {exc.status} {exc.reason}: {body}")


def resource_of(path: str) -> str:
    """The resource a request path addresses, with its subresource: "warmstartjobs/status"
    for /apis/warmstart.dev/v1alpha1/namespaces/ns/warmstartjobs/name/status."""
    parts = path.strip("/").split("/")
    rest = parts[parts.index("namespaces") + 2:] if "namespaces" in parts else parts[-2:]
    return "/".join(rest[:1] + rest[2:3]) if rest else path


class Kube:
    """Thin REST helper over the official client: dicts in, dicts out, counted calls."""

    def __init__(self, api_client: client.ApiClient,
                 on_request: Callable[[str, str], None] | None = None) -> None:
        self.api = api_client
        self.requests = 0
        self.on_request = on_request
        self._count_lock = threading.Lock()
        self._warned_events = False

    @staticmethod
    def connect() -> Kube:
        try:
            config.load_incluster_config()
            return Kube(client.ApiClient())
        except config.ConfigException:
            return Kube(config.new_client_from_config())

    def call(
        self,
        method: str,
        path: str,
        what: str,
        body: Any = None,
        content_type: str = "application/json",
        query: list[tuple[str, str]] | None = None,
    ) -> dict[str, Any]:
        with self._count_lock:
            self.requests += 1
        if self.on_request is not None:
            self.on_request(method, resource_of(path))
        try:
            resp = self.api.call_api(
                path, method,
                query_params=query or [],
                header_params={"Content-Type": content_type, "Accept": "application/json"},
                body=body,
                auth_settings=["BearerToken"],
                _preload_content=False,
                _return_http_data_only=True,
                _request_timeout=30,
            )
        except ApiException as exc:
            raise _translate(exc, method.lower(), what) from None
        data = resp.data
        result: dict[str, Any] = json.loads(data) if data else {}
        return result

    # -- generic -------------------------------------------------------------------------
    def get(self, path: str, what: str) -> dict[str, Any] | None:
        try:
            return self.call("GET", path, what)
        except NotFound:
            return None

    def create(self, path: str, body: dict[str, Any], what: str) -> dict[str, Any] | None:
        """POST; returns None when an object of that name already exists."""
        try:
            return self.call("POST", path, what, body=body)
        except Conflict:
            return None

    # -- the two kinds ------------------------------------------------------------------
    @staticmethod
    def custom_path(namespace: str, plural: str, name: str | None = None) -> str:
        base = f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{plural}"
        return f"{base}/{name}" if name else base

    def get_lineage(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.get(self.custom_path(namespace, MODELLINEAGE_PLURAL, name),
                        f"ModelLineage {namespace}/{name}")

    def get_wsj(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.get(self.custom_path(namespace, WARMSTARTJOB_PLURAL, name),
                        f"WarmStartJob {namespace}/{name}")

    def create_wsj(self, namespace: str, body: dict[str, Any]) -> dict[str, Any] | None:
        return self.create(self.custom_path(namespace, WARMSTARTJOB_PLURAL), body,
                           f"WarmStartJob {namespace}/{body['metadata']['name']}")

    def delete_wsj(self, namespace: str, name: str) -> None:
        with contextlib.suppress(NotFound):
            self.call("DELETE", self.custom_path(namespace, WARMSTARTJOB_PLURAL, name),
                      f"WarmStartJob {namespace}/{name}",
                      body={"propagationPolicy": "Background"})

    def replace_status(self, plural: str, obj: dict[str, Any],
                       status: dict[str, Any]) -> dict[str, Any]:
        """Writes .status guarded by the object's resourceVersion: Conflict when it changed
        since it was read (the reconcile then runs again on the fresh object).

        A lineage's status is replaced (PUT, RBAC verb update); a job's is merge-patched
        with the resourceVersion in the patch, which the API server checks the same way
        (RBAC verb patch), and keys it no longer has set to null."""
        meta = obj["metadata"]
        path = self.custom_path(meta["namespace"], plural, meta["name"]) + "/status"
        what = f"{plural}/{meta['name']} status in {meta['namespace']}"
        if plural == MODELLINEAGE_PLURAL:
            return self.call("PUT", path, what, body={**obj, "status": status})
        removed = {k: None for k in (obj.get("status") or {}) if k not in status}
        body = {"metadata": {"resourceVersion": meta["resourceVersion"]},
                "status": {**removed, **status}}
        return self.call("PATCH", path, what, body=body, content_type=MERGE_PATCH)

    # -- built-in kinds -----------------------------------------------------------------
    def get_secret_data(self, namespace: str, name: str) -> dict[str, str] | None:
        secret = self.get(f"/api/v1/namespaces/{namespace}/secrets/{name}",
                          f"Secret {namespace}/{name}")
        if secret is None:
            return None
        return {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}

    def get_job(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.get(f"/apis/batch/v1/namespaces/{namespace}/jobs/{name}",
                        f"Job {namespace}/{name}")

    def create_job(self, body: dict[str, Any]) -> dict[str, Any] | None:
        ns = body["metadata"]["namespace"]
        return self.create(f"/apis/batch/v1/namespaces/{ns}/jobs", body,
                           f"Job {ns}/{body['metadata']['name']}")

    def patch_job(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        self.call("PATCH", f"/apis/batch/v1/namespaces/{namespace}/jobs/{name}",
                  f"Job {namespace}/{name}", body=patch, content_type=MERGE_PATCH)

    def create_configmap(self, body: dict[str, Any]) -> dict[str, Any] | None:
        ns = body["metadata"]["namespace"]
        return self.create(f"/api/v1/namespaces/{ns}/configmaps", body,
                           f"ConfigMap {ns}/{body['metadata']['name']}")

    def job_pods(self, namespace: str, job_name: str) -> list[dict[str, Any]]:
        result = self.call("GET", f"/api/v1/namespaces/{namespace}/pods",
                           f"pods of Job {namespace}/{job_name}",
                           query=[("labelSelector", f"job-name={job_name}")])
        return list(result.get("items", []))

    def get_deployment(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.get(f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}",
                        f"Deployment {namespace}/{name}")

    def apply_deployment(self, namespace: str, name: str, body: dict[str, Any],
                         field_manager: str) -> dict[str, Any]:
        """Server-side apply, forcing ownership of exactly the fields in body."""
        return self.call(
            "PATCH", f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}",
            f"Deployment {namespace}/{name}", body=body,
            content_type=APPLY_PATCH,
            query=[("fieldManager", field_manager), ("force", "true")],
        )

    def post_event(self, obj: dict[str, Any], event_type: str, reason: str, message: str,
                   component: str) -> None:
        meta = obj["metadata"]
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        ns = meta["namespace"]
        body = {
            "apiVersion": "events.k8s.io/v1",
            "kind": "Event",
            # Named as kubelet names its events: object name + a hex timestamp.
            "metadata": {"name": f"{meta['name']}.{time.time_ns():x}", "namespace": ns},
            "eventTime": now,
            "reportingController": f"warmstart.dev/{component}",
            "reportingInstance": component,
            "action": reason,
            "reason": reason,
            "note": message[:1024],
            "type": event_type,
            "regarding": {"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"),
                          "name": meta["name"], "namespace": ns, "uid": meta.get("uid")},
        }
        # Events are best effort (the status carries the same facts), but a missing RBAC
        # rule for them is said once in the log rather than swallowed.
        try:
            self.call("POST", f"/apis/events.k8s.io/v1/namespaces/{ns}/events",
                      f"events.events.k8s.io in {ns}", body=body)
        except PermissionDenied as exc:
            if not self._warned_events:
                self._warned_events = True
                log.error("%s; Events will be missing", exc)
        except KubeError as exc:
            log.debug("event not posted: %s", exc)
