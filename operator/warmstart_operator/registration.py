"""Recording finished trainings into a lineage and applying the promotion gate.

Run by the lineage reconciler, the only writer of a lineage's status: a WarmStartJob whose
training finished waits in Registering with its verified output digest; here its manifest is
read again, checked against that digest, gated against what serves, and upserted into the
index in the same status write as the verdict, so a version is recorded exactly once and
its verdict never re-evaluated against a serving version it has itself become.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from warmstart import record
from warmstart.api.common import MetricValues
from warmstart.api.constants import JobPromotion, PromotionPolicy, VersionPhase
from warmstart.api.modellineage import LineageVersion, ModelLineage, ModelLineageStatus
from warmstart.storage import StorageError
from warmstart_operator import gate, lineage_index, naming, objectstore, signatures
from warmstart_operator.jobindex import JobRef


@dataclass(frozen=True)
class Recorded:
    entry: LineageVersion
    verdict: gate.Verdict
    promoted: bool


@dataclass(frozen=True)
class NotRecorded:
    job: str
    message: str


def reference(status: ModelLineageStatus, manifest: record.Manifest
              ) -> tuple[MetricValues | None, str]:
    """What the candidate must beat: the serving version, measured on the same holdout.

    When the parent is the serving version the trainer measured it beside the candidate;
    otherwise the serving version's own holdout evaluation from its registration is used.
    """
    serving = status.serving_version or status.desired_version
    parent_version = manifest.parent.version if manifest.parent else None
    if serving is None or serving == parent_version:
        return lineage_index.holdout_metrics(manifest, "parent"), f"parent {parent_version}"
    entry = lineage_index.find(status, serving)
    return (entry.metrics if entry else None), f"serving version {serving}"


def policy(ref: JobRef, lineage: ModelLineage) -> JobPromotion:
    if ref.promotion:
        return JobPromotion(ref.promotion)
    return (JobPromotion.AUTO if lineage.spec.promotion.policy == PromotionPolicy.AUTO
            else JobPromotion.MANUAL)


def record_finished(lineage: ModelLineage, status: ModelLineageStatus, refs: Iterable[JobRef],
                    store: objectstore.ObjectStore) -> list[Recorded | NotRecorded]:
    """Records every Registering job not yet in the index (mutates `status`)."""
    results: list[Recorded | NotRecorded] = []
    for ref in refs:
        if not ref.registering:
            continue
        version = naming.version_name(ref.name)
        if lineage_index.find(status, version) is not None:
            continue  # recorded already; or a clash the job itself reports
        uri = record.version_uri(lineage.spec.storage.uri, version)
        try:
            child = objectstore.read_manifest(store, uri)
        except (StorageError, record.RecordError) as exc:
            results.append(NotRecorded(ref.name, f"cannot read {uri}: {exc}"))
            continue
        if child.digest != ref.output_digest:
            results.append(NotRecorded(ref.name, f"{uri}manifest.json hashes to {child.digest}"
                                       f", the job verified {ref.output_digest}: it changed"))
            continue
        try:  # verify before record: the job checked it; the bytes may have changed since
            signatures.verify_version(store, lineage.spec, version, uri, child.raw)
        except (signatures.SignatureRefused, StorageError) as exc:
            results.append(NotRecorded(ref.name, f"signature of {uri}: {exc}"))
            continue
        results.append(record_version(lineage, status, ref, version, uri, child))
    return results


def record_version(lineage: ModelLineage, status: ModelLineageStatus, ref: JobRef,
                   version: str, uri: str, child: objectstore.ReadManifest) -> Recorded:
    """The one place a version enters the lineage (verify-before-record checks hook in)."""
    ref_values, ref_name = reference(status, child.manifest)
    verdict = gate.decide(lineage.spec.promotion,
                          lineage_index.holdout_metrics(child.manifest, "candidate"),
                          ref_values, ref_name, lineage_index.replay_results(child.manifest))
    how = policy(ref, lineage)
    if not verdict.passed:
        phase, reason = VersionPhase.REJECTED, f"{verdict.reason}: {verdict.message}"
    elif how == JobPromotion.AUTO:
        phase, reason = VersionPhase.PROMOTED, f"GatePassed: {verdict.message}"
    else:
        phase, reason = VersionPhase.CANDIDATE, f"GatePassed: {verdict.message}"
    entry = lineage_index.entry_from_manifest(version, uri, child.digest, child.manifest, phase,
                                              reason[:1024], ref.name)
    lineage_index.upsert(status, entry)
    promoted = phase == VersionPhase.PROMOTED
    if promoted:
        # The automatic choice; a pin still wins (serving.wanted).
        status.desired_version = version
    return Recorded(entry, verdict, promoted)
