"""Reads from what the watches delivered: the informer cache of controller-runtime.

Every reconcile reads its WarmStartJob, the job's lineage and its training Job. The
operator already watches all three (the Kopf event handlers), so those reads are answered
from the newest object a watch or one of the operator's own writes delivered, and a miss
reads the API server. That takes two or three GETs out of each reconcile, which is most of
the time between a WarmStartJob's creation and its training Job's.

Staleness is safe by construction: a status is written with the resourceVersion it was
read at, so a write over a stale read is refused (Conflict) and the entry is dropped, so
the retry reads the API server's copy; creating a Job that already exists is answered
"exists"; and a watch delivers every change, so an entry is at most briefly behind.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from typing import Any

from warmstart.api.constants import MODELLINEAGE_PLURAL, WARMSTARTJOB_PLURAL
from warmstart_operator.cluster import Cluster, Conflict, NotFound

WSJ, LINEAGE, JOB = "WarmStartJob", "ModelLineage", "Job"
_KIND_OF_PLURAL = {WARMSTARTJOB_PLURAL: WSJ, MODELLINEAGE_PLURAL: LINEAGE}


class CachedReads:
    """A Cluster whose reads of WarmStartJobs, lineages and training Jobs come from the
    watches; every other call goes to the wrapped Cluster unchanged."""

    def __init__(self, inner: Cluster) -> None:
        self.inner = inner
        # Kept as JSON text: a tenth of the memory of the parsed objects (500 jobs held cost
        # the operator ~10 MiB as dicts), and each read parses its own copy anyway.
        self._objects: dict[tuple[str, str, str], str] = {}
        self._lock = threading.Lock()  # watches fill it in Kopf's loop, workers read

    # -- fed by the watches and by the operator's own writes ---------------------------
    def observe(self, kind: str, event_type: str | None, body: Mapping[str, Any]) -> None:
        meta = body.get("metadata") or {}
        key = (kind, meta.get("namespace") or "", meta.get("name") or "")
        if not key[1] or not key[2]:
            return
        with self._lock:
            if event_type == "DELETED":
                self._objects.pop(key, None)
            else:
                self._objects[key] = json.dumps(body, default=dict, separators=(",", ":"))

    def _read(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        with self._lock:
            cached = self._objects.get((kind, namespace, name))
        # Parsed per read: reconcilers on other threads never see one another's edits.
        if cached is None:
            return None
        found: dict[str, Any] = json.loads(cached)
        return found

    def _forget(self, kind: str, namespace: str, name: str) -> None:
        with self._lock:
            self._objects.pop((kind, namespace, name), None)

    # -- reads served from the cache ------------------------------------------------------
    def get_wsj(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._read(WSJ, namespace, name) or self.inner.get_wsj(namespace, name)

    def get_lineage(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._read(LINEAGE, namespace, name) or self.inner.get_lineage(namespace, name)

    def get_job(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._read(JOB, namespace, name) or self.inner.get_job(namespace, name)

    # -- writes whose answers refresh it ----------------------------------------------------
    def replace_status(self, plural: str, obj: dict[str, Any],
                       status: dict[str, Any]) -> dict[str, Any]:
        kind, meta = _KIND_OF_PLURAL[plural], obj["metadata"]
        try:
            written = self.inner.replace_status(plural, obj, status)
        except (Conflict, NotFound):
            self._forget(kind, meta["namespace"], meta["name"])
            raise
        self.observe(kind, "MODIFIED", written)
        return written

    def create_job(self, body: dict[str, Any]) -> dict[str, Any] | None:
        created = self.inner.create_job(body)
        if created is not None:
            self.observe(JOB, "ADDED", created)
        return created

    def patch_job(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        self._forget(JOB, namespace, name)  # the next read sees the patch
        self.inner.patch_job(namespace, name, patch)

    # -- everything else, unchanged ---------------------------------------------------------
    def create_wsj(self, namespace: str, body: dict[str, Any]) -> dict[str, Any] | None:
        return self.inner.create_wsj(namespace, body)

    def delete_wsj(self, namespace: str, name: str) -> None:
        self.inner.delete_wsj(namespace, name)

    def get_secret_data(self, namespace: str, name: str) -> dict[str, str] | None:
        return self.inner.get_secret_data(namespace, name)

    def create_configmap(self, body: dict[str, Any]) -> dict[str, Any] | None:
        return self.inner.create_configmap(body)

    def job_pods(self, namespace: str, job_name: str) -> list[dict[str, Any]]:
        return self.inner.job_pods(namespace, job_name)

    def get_deployment(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.inner.get_deployment(namespace, name)

    def apply_deployment(self, namespace: str, name: str, body: dict[str, Any],
                         field_manager: str) -> dict[str, Any]:
        return self.inner.apply_deployment(namespace, name, body, field_manager)

    def post_event(self, obj: dict[str, Any], event_type: str, reason: str, message: str,
                   component: str) -> None:
        self.inner.post_event(obj, event_type, reason, message, component)
