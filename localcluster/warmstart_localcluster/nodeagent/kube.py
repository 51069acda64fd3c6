"""The node agent's only door to the API server: JSON in, dicts out.

The generated client's typed models drop fields they do not know and are slow to build for
every watch event; the agent needs raw pod manifests, so it speaks REST through the
client's configured connection (same TLS, same credentials) and keeps dicts.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

__all__ = ["ApiException", "Kube"]

MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"


class Kube:
    def __init__(self, kubeconfig: str) -> None:
        self.api_client: client.ApiClient = config.new_client_from_config(config_file=kubeconfig)
        self.core = client.CoreV1Api(self.api_client)

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        content_type: str = "application/json",
        query: list[tuple[str, str]] | None = None,
        timeout: float = 30.0,
    ) -> dict[str, Any]:
        resp = self.api_client.call_api(
            path,
            method,
            query_params=query or [],
            header_params={"Content-Type": content_type, "Accept": "application/json"},
            body=body,
            auth_settings=["BearerToken"],
            _preload_content=False,
            _return_http_data_only=True,
            _request_timeout=timeout,
        )
        data = resp.data
        result: dict[str, Any] = json.loads(data) if data else {}
        return result

    def get(self, path: str) -> dict[str, Any] | None:
        try:
            return self.request("GET", path)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def watch_pods(self, resource_version: str, timeout_seconds: int) -> Iterator[
            tuple[str, dict[str, Any]]]:
        """(type, raw pod) for every change since resource_version, until the timeout."""
        w = watch.Watch()
        for event in w.stream(
            self.core.list_pod_for_all_namespaces,
            resource_version=resource_version,
            timeout_seconds=timeout_seconds,
            allow_watch_bookmarks=True,
        ):
            raw = event.get("raw_object")
            if isinstance(raw, dict):
                yield str(event["type"]), raw

    def close(self) -> None:
        self.api_client.close()
