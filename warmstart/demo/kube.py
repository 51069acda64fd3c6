"""The demo's contact with the cluster: kubectl for what a user would type (apply, delete,
wait), the Python client for the polling reads (one HTTP request, not a process, every
second or two on a 2-core machine)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import urllib3.exceptions
import yaml
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from warmstart.api.constants import GROUP, MODELLINEAGE_PLURAL, VERSION, WARMSTARTJOB_PLURAL
from warmstart.demo.errors import DemoError

FIELD_MANAGER = "warmstart-demo"

_T = TypeVar("_T")


@dataclass
class Kube:
    kubectl_path: str
    kubeconfig: str
    namespace: str

    def __post_init__(self) -> None:
        self._api = config.new_client_from_config(config_file=self.kubeconfig)
        self._custom = client.CustomObjectsApi(self._api)
        self._core = client.CoreV1Api(self._api)
        self._apps = client.AppsV1Api(self._api)

    def close(self) -> None:
        self._api.close()

    # -- kubectl ---------------------------------------------------------------------------

    def kubectl(self, *args: str, stdin: str | None = None, timeout: float = 120) -> str:
        argv = [self.kubectl_path, f"--kubeconfig={self.kubeconfig}", *args]
        try:
            done = subprocess.run(
                argv, input=stdin, capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired:
            raise DemoError(f"kubectl {' '.join(args)} did not finish in {timeout:.0f}s") from None
        if done.returncode != 0:
            raise DemoError(f"kubectl {' '.join(args)} failed:\n{done.stderr.strip()}")
        return done.stdout

    def apply(self, docs: Sequence[dict[str, Any]]) -> str:
        """Server-side apply under the demo's field manager, as a GitOps tool would: a field
        dropped from a later apply (e.g. pinnedVersion) is removed from the object. The
        manifests go through stdin, so Secret values never appear on a command line."""
        text = yaml.safe_dump_all(list(docs), sort_keys=False)
        return self.kubectl(
            "apply", "--server-side", f"--field-manager={FIELD_MANAGER}", "--force-conflicts",
            "-n", self.namespace, "-f", "-", stdin=text,
        )

    # -- reads -----------------------------------------------------------------------------

    def _read(self, what: str, call: Callable[[], _T]) -> _T | None:
        try:
            return call()
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise DemoError(f"reading {what}: {exc.status} {exc.reason}") from None
        except urllib3.exceptions.HTTPError as exc:
            raise DemoError(f"reading {what}: the API server did not answer ({exc})") from None

    def custom(self, plural: str, name: str) -> dict[str, Any] | None:
        found: Any = self._read(
            f"{plural}/{name}",
            lambda: self._custom.get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, plural, name
            ),
        )
        return dict(found) if found is not None else None

    def lineage(self, name: str) -> dict[str, Any]:
        found = self.custom(MODELLINEAGE_PLURAL, name)
        if found is None:
            raise DemoError(f"ModelLineage {self.namespace}/{name} is gone")
        return found

    def wsj(self, name: str) -> dict[str, Any]:
        found = self.custom(WARMSTARTJOB_PLURAL, name)
        if found is None:
            raise DemoError(f"WarmStartJob {self.namespace}/{name} is gone")
        return found

    def pods(self, selector: str) -> list[Any]:
        found = self._read(
            f"pods {selector}",
            lambda: self._core.list_namespaced_pod(self.namespace, label_selector=selector),
        )
        return list(found.items) if found is not None else []

    def deployment(self, name: str) -> Any:
        return self._read(
            f"deployment {name}",
            lambda: self._apps.read_namespaced_deployment(name, self.namespace),
        )

    def namespace_exists(self) -> bool:
        return self._read(
            f"namespace {self.namespace}", lambda: self._core.read_namespace(self.namespace)
        ) is not None

    def default_service_account(self) -> bool:
        return self._read(
            "serviceaccount default",
            lambda: self._core.read_namespaced_service_account("default", self.namespace),
        ) is not None


def wait_until(what: str, check: Callable[[], _T | None], timeout: float,
               interval: float = 1.0) -> _T:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise DemoError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def pod_ready(pod: Any) -> bool:
    status = pod.status
    if status is None or status.phase != "Running" or pod.metadata.deletion_timestamp:
        return False
    return any(c.type == "Ready" and c.status == "True" for c in status.conditions or [])
