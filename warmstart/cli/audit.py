"""What an auditor asks of a lineage, answered from object storage: who signed each version
(`lineage verify`), how a version was built (`lineage provenance`), and what served when
(`lineage history [--at TIME]`).

The checks are ``warmstart.signing``, ``warmstart.provenance`` and ``warmstart.history``;
this module reads the lineage, picks the trusted keys from its spec, renders the answers
and maps a refusal to exit code 1 (a definite "no", as a broken hash chain).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from warmstart import history, provenance, record, signing, storage
from warmstart.api.modellineage import ModelLineage
from warmstart.cli.errors import EXIT_BROKEN, EXIT_OK, CliError, NotFoundError, StorageAccessError

NOT_SIGNING = "the lineage does not sign its versions (no spec.signing): signatures not checked"


def lineage_of(obj: dict[str, Any]) -> ModelLineage:
    return ModelLineage.model_validate(obj)


def trusted_keys_of(lineage: ModelLineage) -> tuple[signing.TrustedKey, ...] | None:
    if lineage.spec.signing is None:
        return None
    try:
        return signing.trust_of(lineage.spec.signing)
    except signing.SigningConfigError as exc:
        raise CliError(f"spec.signing: {exc}") from None


def history_head(lineage: ModelLineage) -> history.Head | None:
    head = lineage.status.history_head if lineage.status else None
    return history.Head(head.seq, head.digest) if head else None


# --- signatures ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SignatureRow:
    version: str
    signer: signing.TrustedKey | None
    refusal: signing.SignatureError | None

    def render(self, width: int) -> str:
        if self.refusal is not None:
            refusal = self.refusal
            return f"{self.version:<{width}}  REFUSED  {refusal.check.value}: {refusal.detail}"
        assert self.signer is not None
        return f"{self.version:<{width}}  signed   by {self.signer.describe()}"


def check_signatures(
    source: signing.VersionReader,
    versions: Sequence[tuple[str, str]],
    trusted: Sequence[signing.TrustedKey],
) -> list[SignatureRow]:
    """Verify each (version, uri) of a verified chain; every version gets a row."""
    rows = []
    for version, uri in versions:
        try:
            signer = signing.verify_version_signature(source, uri, trusted, version=None)
            rows.append(SignatureRow(version, signer, None))
        except signing.SignatureError as exc:
            rows.append(SignatureRow(version, None, exc))
        except storage.StorageError as exc:
            raise StorageAccessError(f"cannot read the signature of {version}: {exc}") from None
    return rows


def render_signatures(rows: Sequence[SignatureRow]) -> tuple[str, bool]:
    """The table and whether every version verified."""
    width = max((len(r.version) for r in rows), default=1)
    lines = [row.render(width) for row in rows]
    refused = [r.version for r in rows if r.refusal is not None]
    if refused:
        lines.append(f"signatures refused: {', '.join(refused)} ({len(refused)} of {len(rows)})")
    else:
        lines.append(f"signatures verified: {len(rows)} versions signed by trusted keys")
    return "\n".join(lines) + "\n", not refused


# --- provenance ----------------------------------------------------------------------------


def read_provenance(
    source: Any, lineage: ModelLineage, version: str, uri: str, manifest_digest: str | None
) -> provenance.VerifiedProvenance:
    where = provenance.provenance_uri(uri)
    try:
        data = source.get_bytes(where)
    except storage.ObjectNotFoundError:
        raise NotFoundError(f"version {version} has no {provenance.PROVENANCE_NAME}") from None
    except storage.StorageError as exc:
        raise StorageAccessError(str(exc)) from None
    trusted = trusted_keys_of(lineage)
    if trusted is not None:
        # A certificate-signed version's provenance is signed by its certificate's key,
        # which only the verified manifest signature names.
        # A refused signature adds nothing: the provenance is then checked on its own.
        try:
            signer = signing.verify_version_signature(source, uri, trusted)
        except signing.SignatureError:
            signer = None
        except storage.StorageError as exc:
            raise StorageAccessError(str(exc)) from None
        if signer is not None and signer not in trusted:
            trusted = (*trusted, signer)
    return provenance.open_envelope(
        data, where=where, trusted=trusted, manifest_digest=manifest_digest
    )


def provenance_verdict(opened: provenance.VerifiedProvenance, version: str) -> str:
    if opened.signed_by is None:
        return f"provenance of {version}: not signed ({NOT_SIGNING})"
    return f"provenance of {version}: signature verified, signed by {opened.signed_by.describe()}"


# --- history -------------------------------------------------------------------------------


def render_history(entries: Sequence[tuple[history.Entry, str]], at: dt.datetime | None) -> str:
    if at is not None:
        found = history.served_at(entries, at)
        stamp = history.format_time(at)
        if found is None:
            return f"at {stamp} nothing served (the history starts later or is empty)\n"
        return (
            f"at {stamp} version {found.version} served ({found.manifest_digest}), since "
            f"{history.format_time(found.time)}: {found.cause.event} by {found.cause.kind} "
            f"{found.cause.name}"
            + (f" ({found.cause.detail})" if found.cause.detail else "")
            + "\n"
        )
    if not entries:
        return "no serving history recorded yet\n"
    width = max(len(e.version) for e, _ in entries)
    lines = [
        f"{e.seq:>4}  {history.format_time(e.time)}  {e.version:<{width}}  "
        f"{e.manifest_digest[:19]}  {e.cause.event:<10} {e.cause.kind}/{e.cause.name}"
        for e, _ in entries
    ]
    return "\n".join(lines) + f"\nhistory intact: {len(entries)} entries\n"


def history_report(
    source: history.HistoryStore, lineage: ModelLineage, at: dt.datetime | None
) -> tuple[str, int, str | None]:
    """(stdout text, exit code, refusal message) for `lineage history`."""
    try:
        entries = history.verify_history(source, lineage.spec.storage.uri, history_head(lineage))
    except history.HistoryError as exc:
        return "", EXIT_BROKEN, f"serving history tampered with: {exc}"
    except storage.StorageError as exc:
        raise StorageAccessError(f"cannot read the serving history: {exc}") from None
    return render_history(entries, at), EXIT_OK, None


def provenance_json(opened: provenance.VerifiedProvenance) -> str:
    return json.dumps(opened.statement, indent=2, sort_keys=True) + "\n"


def manifest_digest_of(lineage: ModelLineage, version: str) -> tuple[str, str | None]:
    """(uri, manifestDigest) of a version from the status index."""
    for entry in lineage.status.versions or [] if lineage.status else []:
        if entry.name == version:
            return entry.uri, entry.manifest_digest
    name = lineage.metadata.get("name", "?")
    raise NotFoundError(f"ModelLineage {name} has no version {version!r} in its status")


def chain_versions(links: Sequence[Any]) -> list[tuple[str, str]]:
    return [(link.version, record.ensure_prefix(link.uri)) for link in links]
