"""What a WarmStartJob reads from object storage before its training Job exists: the
lineage's storage, the parent's manifest (resolved from the lineage's index and checked
against its digest) and the dataset objects. Read once per job: a Queued job waits without
touching S3 again."""

from __future__ import annotations

from warmstart import record
from warmstart.api.conditions import JobReason
from warmstart.api.constants import ConditionStatus
from warmstart.api.modellineage import ModelLineage
from warmstart.api.warmstartjob import ResolvedParent, WarmStartJobSpec
from warmstart.storage import ObjectNotFoundError, StorageError
from warmstart_operator import lineage_index, objectstore
from warmstart_operator.jobsteps import SAFETY_NET_SECONDS, Failure, Wait


def storage(stores: objectstore.StoreCache, namespace: str, lineage: ModelLineage
            ) -> objectstore.ObjectStore:
    """The lineage's object storage, with the credentials of its Secret."""
    try:
        return stores.get(namespace, lineage.spec.storage.secret_ref.name)
    except objectstore.CredentialsMissing as exc:
        raise Failure(JobReason.STORAGE_SECRET_NOT_FOUND, str(exc)) from None


def resolve_parent(spec: WarmStartJobSpec, lineage: ModelLineage,
                   store: objectstore.ObjectStore) -> ResolvedParent:
    """The parent the run trains from, its manifest read and its digest checked."""
    try:
        choice = lineage_index.resolve_parent(spec.parent, lineage.status)
    except lineage_index.ParentUnresolved as exc:
        if exc.reason == JobReason.NO_SERVING_VERSION and not _lineage_broken(lineage):
            raise Wait(exc.reason, "the lineage has not registered its base yet; "
                       "waiting", SAFETY_NET_SECONDS) from None
        raise Failure(exc.reason, str(exc)) from None
    try:
        read = objectstore.read_manifest(store, choice.uri)
    except ObjectNotFoundError:
        raise Failure(JobReason.PARENT_MANIFEST_UNREADABLE,
                      f"no manifest.json under parent {choice.uri}") from None
    except StorageError as exc:
        raise Failure(JobReason.PARENT_MANIFEST_UNREADABLE,
                      f"cannot read the parent manifest at {choice.uri}: {exc}") from None
    except record.RecordError as exc:
        raise Failure(JobReason.PARENT_MANIFEST_UNREADABLE, str(exc)) from None
    if choice.digest and read.digest != choice.digest:
        raise Failure(JobReason.PARENT_DIGEST_MISMATCH,
                      f"parent manifest at {choice.uri} hashes to {read.digest}, expected "
                      f"{choice.digest}: it was altered or the digest is wrong")
    return ResolvedParent(version=choice.version, uri=choice.uri,
                          manifest_digest=read.digest)


def check_dataset(store: objectstore.ObjectStore, spec: WarmStartJobSpec) -> None:
    """The training (and validation) data named by the spec exist."""
    for field_name, uri in (("trainURI", spec.dataset.train_uri),
                            ("validationURI", spec.dataset.validation_uri)):
        if not uri:
            continue
        try:
            found = store.exists(uri)
        except StorageError as exc:
            raise Failure("DatasetUnreadable", f"spec.dataset.{field_name} {uri}: {exc}"
                          ) from None
        if not found:
            raise Failure("DatasetNotFound", f"spec.dataset.{field_name}: no object at {uri}")


def _lineage_broken(lineage: ModelLineage) -> bool:
    """True when the lineage reports it cannot read its base: waiting would not help."""
    for cond in (lineage.status.conditions if lineage.status else None) or []:
        if cond.type == "Degraded" and cond.status == ConditionStatus.TRUE:
            return True
    return False
