"""The client side's one Kubernetes wrapper, for the CLI and the demo: read a ModelLineage
and its storage Secret, merge-patch a ModelLineage; for the demo also kubectl for what a
user would type (apply, delete, wait) and the polling reads (one HTTP request, not a
process, every second or two on a 2-core machine). Client exceptions become the CLI's
one-line errors here, so nothing above this module sees an ApiException or a urllib3
traceback.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import urllib3.exceptions
import yaml
from kubernetes import client, config
from kubernetes.client.rest import ApiException
from kubernetes.config.config_exception import ConfigException

from warmstart.api.constants import GROUP, MODELLINEAGE_PLURAL, VERSION, WARMSTARTJOB_PLURAL
from warmstart.cli.errors import (
    CliError,
    ClusterUnavailableError,
    CredentialsError,
    NotFoundError,
)

FIELD_MANAGER = "warmstart-cli"
# (connect, read) seconds: a dead API server must not keep a person waiting for minutes.
REQUEST_TIMEOUT = (5.0, 30.0)
DEFAULT_KUBECONFIG = "~/.kube/config"
IN_CLUSTER_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")

_T = TypeVar("_T")


class ConflictError(CliError):
    """The object changed between our read and our write (resourceVersion precondition)."""


@dataclass(frozen=True)
class KubeOptions:
    kubeconfig: str | None = None
    context: str | None = None
    namespace: str | None = None


class Kube:
    """A connection to one cluster and namespace. ``kubeconfig`` is the file(s) it was
    loaded from ("" in a pod), handed on to kubectl and helm; ``field_manager`` names the
    writer of every patch and apply (the demo applies as a GitOps tool would)."""

    def __init__(self, api: client.ApiClient, namespace: str, server: str, *,
                 kubeconfig: str = "", kubectl_path: str = "kubectl",
                 field_manager: str = FIELD_MANAGER) -> None:
        self._api = api
        self.namespace = namespace
        self._server = server
        self.kubeconfig = kubeconfig
        self.kubectl_path = kubectl_path
        self.field_manager = field_manager
        self._custom = client.CustomObjectsApi(api)
        self._core = client.CoreV1Api(api)
        self._apps = client.AppsV1Api(api)

    @classmethod
    def connect(cls, options: KubeOptions, *, kubectl_path: str = "kubectl",
                field_manager: str = FIELD_MANAGER) -> Kube:
        configuration, namespace, config_file = _load_configuration(options)
        # One retry, not urllib3's default three with backoff: the error is what the user
        # needs when the server is down.
        configuration.retries = 1
        return cls(
            client.ApiClient(configuration), options.namespace or namespace,
            str(configuration.host), kubeconfig=config_file, kubectl_path=kubectl_path,
            field_manager=field_manager,
        )

    def close(self) -> None:
        self._api.close()

    # ModelLineage

    def get_lineage(self, name: str) -> dict[str, Any]:
        def get() -> Any:
            return self._custom.get_namespaced_custom_object(
                GROUP,
                VERSION,
                self.namespace,
                MODELLINEAGE_PLURAL,
                name,
                _request_timeout=REQUEST_TIMEOUT,
            )

        try:
            return dict(self._call(get))
        except ApiException as exc:
            if exc.status == 404:
                raise self._lineage_not_found(name, exc) from None
            raise self._api_error(exc, f"reading ModelLineage {self.namespace}/{name}") from None

    def merge_patch_lineage(self, name: str, patch: Mapping[str, Any]) -> dict[str, Any]:
        """A JSON merge patch (RFC 7386) of the ModelLineage, under our field manager."""

        def send() -> Any:
            return self._custom.patch_namespaced_custom_object(
                GROUP,
                VERSION,
                self.namespace,
                MODELLINEAGE_PLURAL,
                name,
                dict(patch),
                field_manager=self.field_manager,
                _content_type="application/merge-patch+json",
                _request_timeout=REQUEST_TIMEOUT,
            )

        try:
            return dict(self._call(send))
        except ApiException as exc:
            what = f"ModelLineage {self.namespace}/{name}"
            if exc.status == 404:
                raise NotFoundError(f"{what} not found") from None
            if exc.status == 409:
                raise ConflictError(f"{what} changed while it was being updated") from None
            raise self._api_error(exc, f"updating {what}") from None

    # Secret

    def read_secret_data(self, name: str, *, needed_by: str) -> dict[str, str]:
        """The Secret's values, decoded. ``needed_by`` explains in errors who names it."""
        what = f"Secret {self.namespace}/{name}"

        def read() -> Any:
            return self._core.read_namespaced_secret(
                name, self.namespace, _request_timeout=REQUEST_TIMEOUT
            )

        try:
            secret = self._call(read)
        except ApiException as exc:
            if exc.status == 404:
                raise CredentialsError(f"{what} not found ({needed_by})") from None
            if exc.status == 403:
                raise CredentialsError(
                    f"not allowed to read {what} ({needed_by}): {_message(exc)}"
                ) from None
            raise self._api_error(exc, f"reading {what}") from None
        decoded = {}
        for key, value in (secret.data or {}).items():
            try:
                # Strip: Secrets made with --from-file often end in a newline that would
                # otherwise become part of the key and fail as a bad signature.
                decoded[key] = base64.b64decode(value).decode("utf-8").strip()
            except (ValueError, UnicodeDecodeError):
                raise CredentialsError(f"{what}: key {key} is not UTF-8 text") from None
        return decoded

    # kubectl

    def kubectl(self, *args: str, stdin: str | None = None, timeout: float = 120) -> str:
        # Several files joined by ':' reach kubectl through $KUBECONFIG, which it inherits.
        single = self.kubeconfig and os.pathsep not in self.kubeconfig
        argv = [self.kubectl_path, *([f"--kubeconfig={self.kubeconfig}"] if single else []),
                *args]
        try:
            done = subprocess.run(
                argv, input=stdin, capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired:
            raise CliError(f"kubectl {' '.join(args)} did not finish in {timeout:.0f}s") from None
        if done.returncode != 0:
            raise CliError(f"kubectl {' '.join(args)} failed:\n{done.stderr.strip()}")
        return done.stdout

    def apply(self, docs: Sequence[dict[str, Any]]) -> str:
        """Server-side apply under our field manager, as a GitOps tool would: a field
        dropped from a later apply (e.g. pinnedVersion) is removed from the object. The
        manifests go through stdin, so Secret values never appear on a command line."""
        text = yaml.safe_dump_all(list(docs), sort_keys=False)
        return self.kubectl(
            "apply", "--server-side", f"--field-manager={self.field_manager}",
            "--force-conflicts", "-n", self.namespace, "-f", "-", stdin=text,
        )

    # polling reads: None (or empty) when the object is not there

    def _read(self, what: str, call: Callable[[], _T]) -> _T | None:
        try:
            return self._call(call)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise self._api_error(exc, f"reading {what}") from None

    def wsj(self, name: str) -> dict[str, Any]:
        found: Any = self._read(
            f"WarmStartJob {self.namespace}/{name}",
            lambda: self._custom.get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, WARMSTARTJOB_PLURAL, name,
                _request_timeout=REQUEST_TIMEOUT,
            ),
        )
        if found is None:
            raise NotFoundError(f"WarmStartJob {self.namespace}/{name} is gone")
        return dict(found)

    def pods(self, selector: str) -> list[Any]:
        found = self._read(
            f"pods {selector}",
            lambda: self._core.list_namespaced_pod(
                self.namespace, label_selector=selector, _request_timeout=REQUEST_TIMEOUT
            ),
        )
        return list(found.items) if found is not None else []

    def deployment(self, name: str) -> Any:
        return self._read(
            f"deployment {name}",
            lambda: self._apps.read_namespaced_deployment(
                name, self.namespace, _request_timeout=REQUEST_TIMEOUT
            ),
        )

    def namespace_exists(self) -> bool:
        return self._read(
            f"namespace {self.namespace}",
            lambda: self._core.read_namespace(self.namespace, _request_timeout=REQUEST_TIMEOUT),
        ) is not None

    def default_service_account(self) -> bool:
        return self._read(
            "serviceaccount default",
            lambda: self._core.read_namespaced_service_account(
                "default", self.namespace, _request_timeout=REQUEST_TIMEOUT
            ),
        ) is not None

    # errors

    def _call(self, operation: Callable[[], _T]) -> _T:
        try:
            return operation()
        except urllib3.exceptions.HTTPError as exc:
            raise ClusterUnavailableError(
                f"cannot reach the Kubernetes API server at {self._server}: {_reason(exc)}"
            ) from None

    def _lineage_not_found(self, name: str, exc: ApiException) -> CliError:
        body = _body(exc)
        if not body.get("details", {}).get("name"):
            # A 404 for the resource type rather than the object: the CRD is not installed.
            return NotFoundError(
                f"the cluster has no ModelLineage resource ({MODELLINEAGE_PLURAL}.{GROUP}): "
                "are the warmstart CRDs installed?"
            )
        others = self._lineage_names()
        hint = f" (ModelLineages there: {', '.join(others)})" if others else ""
        return NotFoundError(f"ModelLineage {self.namespace}/{name} not found{hint}")

    def _lineage_names(self) -> list[str]:
        try:
            found = self._custom.list_namespaced_custom_object(
                GROUP,
                VERSION,
                self.namespace,
                MODELLINEAGE_PLURAL,
                _request_timeout=REQUEST_TIMEOUT,
            )
        except (ApiException, urllib3.exceptions.HTTPError):
            return []  # only a hint: never let it hide the real error
        return sorted(str(item["metadata"]["name"]) for item in found.get("items", []))

    def _api_error(self, exc: ApiException, action: str) -> CliError:
        if exc.status == 401:
            return ClusterUnavailableError(
                f"the API server at {self._server} rejected the credentials while {action}"
            )
        if exc.status == 403:
            return CliError(f"forbidden while {action}: {_message(exc)}")
        return CliError(f"{action} failed: {exc.status} {_message(exc)}")


def wait_until(what: str, check: Callable[[], _T | None], timeout: float,
               interval: float = 1.0) -> _T:
    """Polls ``check`` until it returns something true, which it returns."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise CliError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def pod_ready(pod: Any) -> bool:
    status = pod.status
    if status is None or status.phase != "Running" or pod.metadata.deletion_timestamp:
        return False
    return any(c.type == "Ready" and c.status == "True" for c in status.conditions or [])


def _load_configuration(options: KubeOptions) -> tuple[client.Configuration, str, str]:
    """Client configuration, the default namespace and the kubeconfig file(s) it came from
    ("" in a pod), from kubeconfig like kubectl:
    --kubeconfig, else $KUBECONFIG (several files joined by ':'), else ~/.kube/config;
    in a pod without any of them, the pod's service account."""
    configuration = client.Configuration()
    explicit = options.kubeconfig or os.environ.get("KUBECONFIG")
    paths = [Path(p).expanduser() for p in (explicit or DEFAULT_KUBECONFIG).split(os.pathsep) if p]
    if options.kubeconfig and not paths[0].is_file():
        raise ClusterUnavailableError(f"kubeconfig {options.kubeconfig} does not exist")
    if not any(path.is_file() for path in paths):
        if not explicit and os.environ.get("KUBERNETES_SERVICE_HOST"):
            return _in_cluster(configuration)
        source = "KUBECONFIG" if explicit else DEFAULT_KUBECONFIG
        raise ClusterUnavailableError(
            f"no cluster configured: no kubeconfig file found ({source}); "
            "pass --kubeconfig or set KUBECONFIG"
        )
    config_file = os.pathsep.join(str(path) for path in paths)
    try:
        config.load_kube_config(
            config_file=config_file,
            context=options.context,
            client_configuration=configuration,
            persist_config=False,
        )
        contexts, current = config.list_kube_config_contexts(config_file)
    except ConfigException as exc:
        raise ClusterUnavailableError(f"kubeconfig: {exc}") from None
    chosen = next((c for c in contexts if c["name"] == options.context), None) or current
    namespace = (chosen or {}).get("context", {}).get("namespace") or "default"
    return configuration, str(namespace), config_file


def _in_cluster(configuration: client.Configuration) -> tuple[client.Configuration, str, str]:
    try:
        config.load_incluster_config(client_configuration=configuration)
    except ConfigException as exc:
        raise ClusterUnavailableError(f"in-cluster configuration: {exc}") from None
    try:
        namespace = IN_CLUSTER_NAMESPACE_FILE.read_text().strip()
    except OSError:
        namespace = "default"
    return configuration, namespace or "default", ""


def _body(exc: ApiException) -> dict[str, Any]:
    try:
        body = json.loads(exc.body or "{}")
    except (TypeError, ValueError):
        return {}
    return body if isinstance(body, dict) else {}


def _message(exc: ApiException) -> str:
    return str(_body(exc).get("message") or exc.reason or "no message")


def _reason(exc: urllib3.exceptions.HTTPError) -> str:
    reason = getattr(exc, "reason", None) or exc
    # urllib3 prefixes "<urllib3.connection.HTTPSConnection object at 0x...>: ": noise.
    return re.sub(r"^<[^>]*>:\s*", "", str(reason)) or type(exc).__name__
