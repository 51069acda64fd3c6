"""An in-memory Kubernetes API and object store for the reconcilers (the `Cluster` and
`ObjectStore` protocols): objects with resourceVersion and generation, the status
subresource with optimistic concurrency, server-side apply of the model fields, Events,
and a watch that calls back on every change. What the real controllers would do (a Job
completing, a Deployment becoming available) the tests do by hand."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

from tests.fakeclock import FakeClock
from warmstart import record
from warmstart.storage import ObjectInfo, ObjectNotFoundError
from warmstart_operator.cluster import Conflict, NotFound
from warmstart_operator.jobindex import JobRef, ref_from_body
from warmstart_operator.rollout import MODEL_VERSION_ANNOTATION
from warmstart_operator.trust import LINEAGE_LABEL, Claimant

ObjKey = tuple[str, str, str]  # (kind, namespace, name)
Watcher = Callable[[str, str, dict[str, Any]], None]  # (kind, event type, body)


def _copy(obj: dict[str, Any]) -> dict[str, Any]:
    # Objects are JSON, as on the wire; a JSON round trip copies them several times faster
    # than copy.deepcopy, which dominated the model-based tests' time.
    copied: dict[str, Any] = json.loads(json.dumps(obj))
    return copied


class FakeCluster:
    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.objects: dict[ObjKey, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self.writes = 0
        self.reads = 0  # GETs through the Cluster protocol
        self._rv = 0
        self._uid = 0
        self._watchers: list[Watcher] = []
        self.fail_next: dict[str, Exception] = {}  # method name -> raised once

    # -- plumbing ----------------------------------------------------------------------
    def watch(self, watcher: Watcher) -> None:
        self._watchers.append(watcher)

    def _stamp(self) -> str:
        return dt.datetime.fromtimestamp(self.clock(), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def _notify(self, kind: str, event_type: str, body: dict[str, Any]) -> None:
        for watcher in self._watchers:
            watcher(kind, event_type, body)  # handlers only read what they are given

    def _maybe_fail(self, method: str) -> None:
        if method in self.fail_next:
            raise self.fail_next.pop(method)

    def put(self, kind: str, body: dict[str, Any]) -> dict[str, Any] | None:
        """Creates an object as the API server would; None if the name is taken."""
        self.writes += 1
        meta = body.setdefault("metadata", {})
        key = (kind, meta["namespace"], meta["name"])
        if key in self.objects:
            return None
        self._rv += 1
        self._uid += 1
        meta.update(resourceVersion=str(self._rv), uid=f"uid-{self._uid}", generation=1,
                    creationTimestamp=self._stamp())
        body.setdefault("kind", kind)
        stored = _copy(body)
        self.objects[key] = stored
        self._notify(kind, "ADDED", stored)
        return stored

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        # Stored objects are snapshots, replaced (never changed) on every write: a reader
        # holds its version, as a client holds what the API server sent it.
        return self.objects.get((kind, namespace, name))

    def update(self, kind: str, namespace: str, name: str,
               change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        """Changes an object in place (spec edits bump its generation)."""
        before = self.objects[(kind, namespace, name)]
        obj = _copy(before)
        change(obj)
        if obj.get("spec") != before.get("spec"):
            obj["metadata"]["generation"] += 1
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)
        self.objects[(kind, namespace, name)] = obj
        self._notify(kind, "MODIFIED", obj)
        return obj

    def remove(self, kind: str, namespace: str, name: str) -> None:
        obj = self.objects.pop((kind, namespace, name), None)
        if obj is not None:
            self._notify(kind, "DELETED", obj)

    def jobs_of(self, namespace: str, lineage: str) -> list[JobRef]:
        refs = (ref_from_body(o) for (kind, ns, _), o in self.objects.items()
                if kind == "WarmStartJob" and ns == namespace)
        return [r for r in refs if r is not None and r.lineage == lineage]

    def claimants(self, namespace: str) -> list[Claimant]:
        """What the operator's index of lineages by namespace holds."""
        found = (Claimant.of(o) for (kind, ns, _), o in self.objects.items()
                 if kind == "ModelLineage" and ns == namespace)
        return [c for c in found if c is not None]

    def events_of(self, name: str) -> list[str]:
        return [e["reason"] for e in self.events if e["regarding"] == name]

    # -- the Cluster protocol ------------------------------------------------------------
    def get_lineage(self, namespace: str, name: str) -> dict[str, Any] | None:
        self.reads += 1
        return self.get("ModelLineage", namespace, name)

    def get_wsj(self, namespace: str, name: str) -> dict[str, Any] | None:
        self.reads += 1
        return self.get("WarmStartJob", namespace, name)

    def create_wsj(self, namespace: str, body: dict[str, Any]) -> dict[str, Any] | None:
        return self.put("WarmStartJob", _copy(body))

    def delete_wsj(self, namespace: str, name: str) -> None:
        self.writes += 1
        self.remove("WarmStartJob", namespace, name)

    def replace_status(self, plural: str, obj: dict[str, Any],
                       status: dict[str, Any]) -> dict[str, Any]:
        self._maybe_fail("replace_status")
        self.writes += 1
        kind = "WarmStartJob" if plural == "warmstartjobs" else "ModelLineage"
        meta = obj["metadata"]
        current = self.objects.get((kind, meta["namespace"], meta["name"]))
        if current is None:
            raise NotFound(f"{kind} {meta['name']} not found")
        if current["metadata"]["resourceVersion"] != meta["resourceVersion"]:
            raise Conflict(f"{kind} {meta['name']} changed")

        def write(o: dict[str, Any]) -> None:
            o["status"] = _copy(status)

        return self.update(kind, meta["namespace"], meta["name"], write)

    def get_secret_data(self, namespace: str, name: str) -> dict[str, str] | None:
        secret = self.get("Secret", namespace, name)
        return None if secret is None else dict(secret.get("stringData") or {})

    def get_job(self, namespace: str, name: str) -> dict[str, Any] | None:
        self.reads += 1
        return self.get("Job", namespace, name)

    def create_job(self, body: dict[str, Any]) -> dict[str, Any] | None:
        self._maybe_fail("create_job")
        return self.put("Job", _copy(body))

    def patch_job(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        self.writes += 1
        self.update("Job", namespace, name, lambda o: o["spec"].update(patch["spec"]))

    def create_configmap(self, body: dict[str, Any]) -> dict[str, Any] | None:
        return self.put("ConfigMap", _copy(body))

    def job_pods(self, namespace: str, job_name: str) -> list[dict[str, Any]]:
        return [o for (kind, ns, _), o in self.objects.items()
                if kind == "Pod" and ns == namespace
                and o["metadata"].get("labels", {}).get("job-name") == job_name]

    def get_deployment(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.get("Deployment", namespace, name)

    def apply_deployment(self, namespace: str, name: str, body: dict[str, Any],
                         field_manager: str) -> dict[str, Any]:
        self._maybe_fail("apply_deployment")
        self.writes += 1
        if ("Deployment", namespace, name) not in self.objects:
            raise NotFound(f"Deployment {name} not found")
        template = body["spec"]["template"]
        wanted = template["spec"]["containers"][0]

        def apply(o: dict[str, Any]) -> None:
            tmpl = o["spec"]["template"]
            tmpl.setdefault("metadata", {}).setdefault("annotations", {}).update(
                template["metadata"]["annotations"])
            for container in tmpl["spec"]["containers"]:
                if container["name"] == wanted["name"]:
                    env = {e["name"]: e for e in container.get("env") or []}
                    env.update({e["name"]: e for e in wanted["env"]})
                    container["env"] = list(env.values())

        return self.update("Deployment", namespace, name, apply)

    def post_event(self, obj: dict[str, Any], event_type: str, reason: str, message: str,
                   component: str) -> None:
        self.writes += 1
        self.events.append({"regarding": obj["metadata"]["name"], "type": event_type,
                            "reason": reason, "note": message, "at": self.clock()})


def deployment(namespace: str, name: str, container: str = "server",
               lineage: str | None = "reviews") -> dict[str, Any]:
    """A Deployment that opts in to `lineage` with the trust label (None: no label)."""
    labels = {LINEAGE_LABEL: lineage} if lineage else {}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": {"replicas": 1, "template": {"metadata": {}, "spec": {
                "containers": [{"name": container, "image": "server"}]}}},
            "status": {}}


def applied(obj: dict[str, Any]) -> str | None:
    annotations = obj["spec"]["template"].get("metadata", {}).get("annotations") or {}
    value = annotations.get(MODEL_VERSION_ANNOTATION)
    return str(value) if value else None


class FakeStore:
    """Object storage as a dict of URI -> bytes."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def put(self, uri: str, data: bytes) -> None:
        self.objects[uri] = data

    def read_manifest(self, version_prefix: str) -> bytes:
        uri = record.manifest_uri(version_prefix)
        if uri not in self.objects:
            raise ObjectNotFoundError(f"{uri}: no such object")
        return self.objects[uri]

    def get_bytes(self, uri: str) -> bytes:
        if uri not in self.objects:
            raise ObjectNotFoundError(f"{uri}: no such object")
        return self.objects[uri]

    def put_bytes(self, uri: str, data: bytes, *, content_type: str | None = None) -> None:
        self.objects[uri] = data

    def exists(self, uri: str) -> bool:
        return uri in self.objects

    def list(self, prefix_uri: str) -> list[ObjectInfo]:
        return [ObjectInfo(uri, len(data)) for uri, data in sorted(self.objects.items())
                if uri.startswith(prefix_uri)]

    def delete(self, uri: str) -> None:
        self.objects.pop(uri, None)
