"""Download a committed version from object storage and verify it before anything loads it."""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from warmstart import record, storage
from warmstart_trainer.errors import RefusedError, TrainerError
from warmstart_trainer.progress import PROGRESS_DIR

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FetchedVersion:
    directory: Path
    manifest: record.Manifest
    manifest_digest: str
    uri: str


def fetch_version(
    store: storage.Storage,
    version_prefix: str,
    destination: Path,
    *,
    expected_digest: str | None,
    what: str,
) -> FetchedVersion:
    """Download the version at ``version_prefix`` into ``destination`` and verify it.

    With ``expected_digest`` the manifest must hash to it; every listed file must match its
    size and sha256; a pickle-format file anywhere in the version is refused. Any failure
    raises ``RefusedError`` (verification) or ``TrainerError`` (storage) and the directory is
    left empty, so nothing half-verified can be loaded by mistake.
    """
    prefix = record.ensure_prefix(version_prefix)
    try:
        data = store.read_manifest(prefix)
    except storage.ObjectNotFoundError:
        raise TrainerError(
            f"{what} at {prefix}: no {record.MANIFEST_NAME}: not a committed version"
        ) from None
    digest = record.manifest_digest(data)
    try:
        if expected_digest is not None:
            record.verify_manifest_digest(data, expected_digest, what=f"{what} at {prefix}")
        manifest = record.parse_manifest(data, source=f"{prefix}{record.MANIFEST_NAME}")
        record.refuse_pickle(manifest.file_names, where=f"{what} at {prefix}")
        # Progress checkpoints of an unfinished child are not part of the version.
        stored = [
            info.uri[len(prefix) :]
            for info in store.list(prefix)
            if info.uri.startswith(prefix) and not info.uri[len(prefix) :].startswith(PROGRESS_DIR)
        ]
        record.refuse_pickle(stored, where=f"{what} at {prefix}")
    except record.RecordError as exc:
        raise RefusedError(f"refused {what}: {exc}") from None

    if destination.exists():
        shutil.rmtree(destination)
    destination.mkdir(parents=True)
    pairs = [(record.file_uri(prefix, name), destination / name) for name in manifest.file_names]
    store.download_files(pairs)
    try:
        record.verify_local_files(manifest, destination, where=f"{what} at {prefix}")
    except record.RecordError as exc:
        shutil.rmtree(destination, ignore_errors=True)
        raise RefusedError(f"refused {what}: {exc}") from None
    log.info(
        "verified %s %s at %s (%d files, manifest %s)",
        what,
        manifest.version,
        prefix,
        len(manifest.files),
        digest,
    )
    return FetchedVersion(destination, manifest, digest, prefix)
