"""What the trainer writes beside a version's manifest, before it: the build provenance and
the manifest's signature (``warmstart.provenance``, ``warmstart.signing``).

The signing key reaches the pod as a file from the lineage's Secret (the operator mounts it
and names it in WARMSTART_SIGNING_KEY_FILE); its bytes are never logged. Without that
variable the lineage does not sign, and the provenance is written unsigned.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from warmstart import provenance, record, signing, storage
from warmstart_trainer.errors import InvalidInputError

log = logging.getLogger(__name__)


def write_attestations(
    store: storage.Storage,
    version_prefix: str,
    manifest: record.Manifest,
    manifest_bytes: bytes,
    *,
    parameters: Mapping[str, Any],
    started_on: str | None = None,
    env: Mapping[str, str] | None = None,
) -> None:
    """Upload provenance.json and (when a key is configured) manifest.sig for a version
    whose manifest is about to be written."""
    env = os.environ if env is None else env
    key_file = signing.signing_key_file_from_env(env)
    statement = provenance.build_statement(
        manifest,
        manifest_bytes,
        parameters=parameters,
        builder=provenance.Builder.from_env(env),
        started_on=started_on,
    )
    try:
        envelope = provenance.envelope(statement, key_file)
        signature = (
            signing.sign_manifest(manifest_bytes, manifest.version, key_file)
            if key_file is not None
            else None
        )
    except signing.SigningConfigError as exc:
        raise InvalidInputError(f"{signing.SIGNING_KEY_FILE_ENV}: {exc}") from None
    store.put_bytes(
        provenance.provenance_uri(version_prefix), envelope, content_type="application/json"
    )
    if signature is not None:
        store.put_bytes(
            signing.signature_uri(version_prefix), signature, content_type="application/json"
        )
        log.info("signed version %s (%s)", manifest.version, signing.SIGNATURE_NAME)
