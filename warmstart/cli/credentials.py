"""S3 settings from the lineage's storage Secret (spec.storage.secretRef).

Only the keys the Secret contract names are read, so nothing else in the Secret or in the
user's environment changes which server or account is used. No value is ever put in a
message: ``S3Settings``'s repr hides the secret key too.
"""

from __future__ import annotations

from collections.abc import Mapping

from warmstart.api.constants import StorageSecretKeys
from warmstart.cli.errors import CredentialsError
from warmstart.storage import S3Settings

# A person is waiting: fail within seconds on a dead endpoint instead of retrying for minutes.
CLI_MAX_ATTEMPTS = 2
CLI_CONNECT_TIMEOUT_S = 5.0


def s3_settings(
    secret_data: Mapping[str, str], *, secret: str, endpoint_override: str | None = None
) -> S3Settings:
    """``secret`` is ``namespace/name``, for messages."""
    missing = [key for key in StorageSecretKeys.REQUIRED if not secret_data.get(key)]
    if missing:
        raise CredentialsError(
            f"Secret {secret} has no {' or '.join(missing)} "
            "(needed to read the lineage's object storage)"
        )
    return S3Settings(
        access_key_id=secret_data[StorageSecretKeys.ACCESS_KEY_ID],
        secret_access_key=secret_data[StorageSecretKeys.SECRET_ACCESS_KEY],
        endpoint_url=endpoint_override or secret_data.get(StorageSecretKeys.ENDPOINT_URL) or None,
        region=secret_data.get(StorageSecretKeys.REGION) or "us-east-1",
        max_attempts=CLI_MAX_ATTEMPTS,
        connect_timeout_s=CLI_CONNECT_TIMEOUT_S,
    )
