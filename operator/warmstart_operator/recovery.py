"""Re-indexing a lineage from its record in object storage.

A ModelLineage's status is an index of the record in storage; the manifests are the truth.
When a lineage object is deleted and created again (a GitOps re-sync after a mistake, a
cluster rebuilt from Git, a backup restored without status) its status starts empty while
every version still sits under storage.uri. The operator then reads those manifests back
into the index, so history is never lost with the object.

The gate's verdicts are not part of the record (the trainer commits a version before the
gate looks at it), so recovered versions come back as Candidates, except the one the
serving Deployment runs, which comes back Promoted and is kept serving: recovery never
rolls anything out.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

from warmstart import record
from warmstart.api.constants import VersionPhase
from warmstart.api.modellineage import LineageVersion
from warmstart_operator import lineage_index
from warmstart_operator.objectstore import ReadManifest

RECOVERED = "RecoveredFromStorage"
_UNDATED = dt.datetime.max.replace(tzinfo=dt.UTC)


def version_names(object_uris: Iterable[str], storage_uri: str) -> list[str]:
    """Names of the versions committed directly under storage_uri: a folder counts only
    once its manifest exists (the trainer writes it last)."""
    prefix = record.ensure_prefix(storage_uri)
    names = set()
    for uri in object_uris:
        if not uri.startswith(prefix):
            continue
        parts = uri[len(prefix):].split("/")
        if len(parts) == 2 and parts[1] == record.MANIFEST_NAME and parts[0]:
            names.add(parts[0])
    return sorted(names)


def recovered_entries(found: Sequence[tuple[str, str, ReadManifest]], lineage: str,
                      serving: str | None) -> list[LineageVersion]:
    """Index entries for the manifests found, oldest first (so `latest` ends on the newest).
    A manifest of another lineage, or one whose version name is not its folder's, is left
    out: it is not this lineage's record."""
    entries = []
    for name, uri, read in found:
        if read.manifest.lineage != lineage or read.manifest.version != name:
            continue
        promoted = name == serving
        entries.append(lineage_index.entry_from_manifest(
            name, uri, read.digest, read.manifest,
            VersionPhase.PROMOTED if promoted else VersionPhase.CANDIDATE,
            f"{RECOVERED}: " + ("the serving Deployment runs it" if promoted else
                                "re-indexed from its manifest; the gate's verdict is not "
                                "recorded in storage"),
            None))
    return sorted(entries, key=lambda e: (e.created_at or _UNDATED, e.name))
