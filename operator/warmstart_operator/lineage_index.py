"""Pure functions over a ModelLineage's status: the index of its versions.

The status is an index of the durable record in object storage; these functions resolve a
parent against it and upsert versions idempotently (keyed by name, same manifest digest =
nothing to do), so a reconcile repeated after a crash changes nothing the first one did.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from warmstart import record
from warmstart.api.common import MetricValues
from warmstart.api.constants import PARENT_LATEST, PARENT_SERVING, VersionPhase
from warmstart.api.modellineage import MAX_STATUS_VERSIONS, LineageVersion, ModelLineageStatus
from warmstart.api.warmstartjob import ParentReference
from warmstart.manifestschema import Score
from warmstart_operator import gate

BASE_VERSION = "base"


class ParentUnresolved(Exception):
    """The parent cannot be found in the lineage; `reason` is a condition reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class ParentChoice:
    version: str
    uri: str
    digest: str | None  # None: take the digest the record yields (only for the base)


def find(status: ModelLineageStatus | None, name: str) -> LineageVersion | None:
    for version in (status.versions if status and status.versions else []):
        if version.name == name:
            return version
    return None


def resolve_parent(ref: ParentReference, status: ModelLineageStatus | None) -> ParentChoice:
    """serving | latest | a version name | uri+digest -> what to download and verify."""
    if ref.uri:
        assert ref.digest is not None  # the CRD's CEL rule requires it
        # A uri+digest that is one of this lineage's own versions keeps its name, so the
        # lineage tree links the child to it instead of to an anonymous "external" parent.
        for indexed in (status.versions or []) if status else []:
            if indexed.manifest_digest == ref.digest and indexed.phase != VersionPhase.RETIRED:
                return ParentChoice(indexed.name, record.ensure_prefix(ref.uri), ref.digest)
        return ParentChoice("external", record.ensure_prefix(ref.uri), ref.digest)
    wanted = ref.version or PARENT_SERVING
    if wanted == PARENT_SERVING:
        # Before anything was promoted, the family's version 0 is what "serving" means.
        name = (status.serving_version or status.desired_version if status else None) or (
            BASE_VERSION if find(status, BASE_VERSION) else None)
        if not name:
            raise ParentUnresolved(
                "NoServingVersion",
                "parent.version is `serving` but the lineage serves no version yet "
                "(its base has not been registered)",
            )
    elif wanted == PARENT_LATEST:
        name = status.latest_version if status else None
        if not name:
            raise ParentUnresolved("NoLatestVersion", "the lineage has no recorded version yet")
    else:
        name = wanted
    version = find(status, name)
    if version is None:
        known = ", ".join(v.name for v in (status.versions or [])) if status else ""
        raise ParentUnresolved(
            "ParentNotFound",
            f'parent version "{name}" is not a version of this lineage'
            + (f" (known: {known})" if known else ""),
        )
    if version.phase == VersionPhase.RETIRED:
        raise ParentUnresolved(
            "ParentRetired", f'parent version "{name}" is retired: its weights were deleted')
    return ParentChoice(version.name, version.uri, version.manifest_digest)


def holdout_metrics(manifest: record.Manifest, role: str) -> MetricValues | None:
    """The trainer's holdout evaluation of the candidate or its parent, as MetricValues."""
    holdout = manifest.evaluation.holdout
    if holdout is None:
        return None
    return to_metric_values(holdout.candidate if role == "candidate" else holdout.parent)


def replay_results(manifest: record.Manifest) -> list[gate.ReplayResult]:
    """The trainer's evaluation of candidate and parent on each replay set."""
    return [gate.ReplayResult(r.uri, to_metric_values(r.candidate), to_metric_values(r.parent))
            for r in manifest.evaluation.replay]


def to_metric_values(score: Score | None) -> MetricValues | None:
    if score is None:
        return None
    return MetricValues(accuracy=score.accuracy, f1=score.f1, loss=score.loss,
                        samples=score.examples)


def entry_from_manifest(
    name: str,
    uri: str,
    digest: str,
    manifest: record.Manifest,
    phase: VersionPhase,
    reason: str | None,
    job_name: str | None,
) -> LineageVersion:
    created: dt.datetime | None = None
    if manifest.created_at:
        try:
            created = dt.datetime.fromisoformat(manifest.created_at.replace("Z", "+00:00"))
        except ValueError:
            created = None
    return LineageVersion(
        name=name,
        parent=manifest.parent.version if manifest.parent else None,
        # A cold start names what it was evaluated against without claiming it as parent.
        compared_with=manifest.compared_with.version if manifest.compared_with else None,
        uri=uri,
        manifest_digest=digest,
        dataset_digest=manifest.dataset_digest,
        metrics=holdout_metrics(manifest, "candidate"),
        phase=phase,
        reason=reason,
        job_name=job_name,
        created_at=created,
    )


def upsert(status: ModelLineageStatus, entry: LineageVersion) -> bool:
    """Adds entry (or nothing, if that version with that digest is there); True if changed.

    A version is never overwritten by a different manifest: the record is append-only.
    """
    versions = list(status.versions or [])
    for existing in versions:
        if existing.name == entry.name:
            return False
    versions.append(entry)
    # Bounded: the oldest retired versions leave the index first (the record keeps them).
    while len(versions) > MAX_STATUS_VERSIONS:
        retired = [v for v in versions if v.phase == VersionPhase.RETIRED]
        versions.remove(retired[0] if retired else versions[0])
    status.versions = versions
    status.version_count = (status.version_count or 0) + 1
    status.latest_version = entry.name
    return True


def set_phase(status: ModelLineageStatus, name: str, phase: VersionPhase,
              reason: str | None) -> bool:
    version = find(status, name)
    if version is None or (version.phase == phase and version.reason == reason):
        return False
    version.phase = phase
    version.reason = reason
    return True
