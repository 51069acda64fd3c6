"""Re-indexing a re-created lineage from storage (recovery.py decides what comes back):
versions whose signature does not hold are left out, what the serving Deployment runs stays
serving only if that Deployment opted in to the lineage, and the serving history gives back
the rollback target and its anchor."""

from __future__ import annotations

from warmstart import history, record
from warmstart.storage import StorageError
from warmstart_operator import (
    lineage_index,
    objectstore,
    recovery,
    servinghistory,
    signatures,
    trust,
)
from warmstart_operator.cluster import Cluster
from warmstart_operator.lineagepass import Pass
from warmstart_operator.rollout import applied_version


def recover(p: Pass, kube: Cluster, stores: objectstore.StoreCache) -> None:
    """A lineage with an empty index over a storage prefix that already holds versions
    (the object was re-created): index them again from their manifests."""
    storage_uri = p.lineage.spec.storage.uri
    try:
        store = stores.get(p.ns, p.lineage.spec.storage.secret_ref.name)
        names = recovery.version_names((o.uri for o in store.list(storage_uri)),
                                       storage_uri)
    except (objectstore.CredentialsMissing, StorageError) as exc:
        p.out.event("RecoveryFailed", f"cannot list {storage_uri}: {exc}", warning=True)
        return
    base = lineage_index.find(p.status, lineage_index.BASE_VERSION)
    found = []
    for version in names:
        if version == lineage_index.BASE_VERSION:
            continue  # registered from spec.base, wherever it lives
        uri = record.version_uri(storage_uri, version)
        try:
            read = objectstore.read_manifest(store, uri)
        except (StorageError, record.RecordError) as exc:
            p.out.event("RecoveryFailed", f"version {version} left out: {exc}",
                        warning=True)
            continue
        refused = signatures.refuse_unsigned_recovery(store, p.lineage.spec, version,
                                                      read.raw)
        if refused:
            p.out.event("RecoveryFailed", f"version {version} left out: {refused}",
                        warning=True)
            continue
        if base is None or read.digest != base.manifest_digest:  # the base, published here
            found.append((version, uri, read))
    current = None
    if p.lineage.spec.serving is not None:
        deployment = kube.get_deployment(
            p.ns, p.lineage.spec.serving.deployment_ref.name)
        # What a Deployment that has not opted in runs is none of this lineage's business.
        if deployment and not trust.deployment_opt_in(
                deployment["metadata"]["name"], deployment["metadata"].get("labels"),
                p.name, p.ns):
            current = applied_version(deployment)
    entries = recovery.recovered_entries(found, p.name, current)
    if not entries:
        return
    for entry in entries:
        lineage_index.upsert(p.status, entry)
    recovered_serving = current if any(e.name == current for e in entries) else None
    if recovered_serving:
        p.status.desired_version = recovered_serving
        p.status.serving_version = recovered_serving
    try:  # the serving history survives the object: the rollback target and anchor
        previous, head = servinghistory.recovered_previous(store, storage_uri,
                                                           recovered_serving)
    except (history.HistoryError, StorageError) as exc:
        previous, head = None, None
        p.out.event(servinghistory.HISTORY_TAMPERED, f"serving history: {exc}",
                    warning=True)
    if previous and lineage_index.find(p.status, previous) is not None:
        p.status.previous_version = previous
    p.status.history_head = head or p.status.history_head
    p.out.event(recovery.RECOVERED, f"Re-indexed {len(entries)} versions from their "
                f"manifests under {storage_uri}" + (
                    f"; {recovered_serving} stays serving" if recovered_serving else ""))
