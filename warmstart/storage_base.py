"""What the ``Storage`` facade (storage.py) stands on: the errors it raises, the URIs it
accepts, how it reaches an S3-compatible server (settings from the environment, the boto3
client) and how botocore's exceptions become its errors. Nothing else imports boto3 except
storage.py itself; callers import these names from ``warmstart.storage``.
"""

from __future__ import annotations

import functools
import os
import threading
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import boto3
import botocore.config
import botocore.exceptions
from boto3.s3.transfer import TransferConfig

from warmstart import record

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

MiB = 1024 * 1024


class StorageError(Exception):
    """An object-storage operation failed; the message names the URI."""


class InvalidURIError(StorageError):
    """A URI this module cannot address."""


class ObjectNotFoundError(StorageError):
    pass


class AccessDeniedError(StorageError):
    pass


class StorageUnavailableError(StorageError):
    """The server could not be reached or kept failing (network, endpoint, throttling)."""


class CredentialsError(StorageError):
    """No usable credentials, or the server rejected them."""


# --- URIs ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class S3Location:
    bucket: str
    key: str

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def parse_s3_uri(uri: str) -> S3Location:
    """``s3://bucket/key`` -> (bucket, key). The key may be empty (the bucket's root)."""
    parsed = urllib.parse.urlsplit(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise InvalidURIError(f"{uri!r}: not an s3://bucket/key URI")
    if parsed.query or parsed.fragment:
        raise InvalidURIError(f"{uri!r}: s3 URIs take no query or fragment")
    return S3Location(bucket=parsed.netloc, key=parsed.path.lstrip("/"))


def local_path(uri: str) -> Path:
    parsed = urllib.parse.urlsplit(uri)
    if parsed.scheme != "file" or parsed.netloc not in ("", "localhost"):
        raise InvalidURIError(f"{uri!r}: not a file:///absolute/path URI")
    return Path(urllib.parse.unquote(parsed.path))


def scheme(uri: str) -> str:
    value = urllib.parse.urlsplit(uri).scheme
    if value not in ("s3", "file"):
        raise InvalidURIError(f"{uri!r}: unsupported scheme {value!r}; use s3:// or file:///")
    return value


def join(prefix: str, name: str) -> str:
    return record.ensure_prefix(prefix) + name


# --- settings ------------------------------------------------------------------------------


@dataclass(frozen=True)
class S3Settings:
    """How to reach the S3 server. ``repr`` hides the secret so it can never be logged."""

    access_key_id: str | None = None
    secret_access_key: str | None = None
    session_token: str | None = None
    endpoint_url: str | None = None
    region: str = "us-east-1"
    # Path-style addressing works with every S3-compatible server (SeaweedFS, MinIO) and
    # with bucket names that are not valid DNS labels; AWS still accepts it.
    addressing_style: Literal["auto", "virtual", "path"] = "path"
    max_concurrency: int = 8
    multipart_threshold: int = 16 * MiB
    multipart_chunksize: int = 16 * MiB
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 60.0
    max_attempts: int = 5

    def __repr__(self) -> str:
        return (
            f"S3Settings(endpoint_url={self.endpoint_url!r}, region={self.region!r}, "
            f"access_key_id={'set' if self.access_key_id else 'unset'}, "
            f"secret_access_key={'set' if self.secret_access_key else 'unset'})"
        )

    __str__ = __repr__

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> S3Settings:
        """Read the standard AWS variables (and ``S3_ENDPOINT``, which some charts set)."""
        env = os.environ if env is None else env
        endpoint = (
            env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or env.get("S3_ENDPOINT")
        )
        return cls(
            access_key_id=env.get("AWS_ACCESS_KEY_ID") or None,
            secret_access_key=env.get("AWS_SECRET_ACCESS_KEY") or None,
            session_token=env.get("AWS_SESSION_TOKEN") or None,
            endpoint_url=endpoint or None,
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
            max_concurrency=int(env.get("WARMSTART_S3_CONCURRENCY", "8")),
        )

    def transfer_config(self) -> TransferConfig:
        return TransferConfig(
            multipart_threshold=self.multipart_threshold,
            multipart_chunksize=self.multipart_chunksize,
            max_concurrency=self.max_concurrency,
            use_threads=True,
        )


# One boto3 Session for every client: each Session parses the S3 service model anew (about
# 12 MiB), which an operator with one client per namespace would pay 25 times over.
_SESSION_LOCK = threading.Lock()


@functools.cache
def _shared_session() -> boto3.session.Session:
    return boto3.session.Session()


def make_s3_client(settings: S3Settings) -> S3Client:
    config = botocore.config.Config(
        region_name=settings.region,
        signature_version="s3v4",
        s3={"addressing_style": settings.addressing_style},
        retries={"max_attempts": settings.max_attempts, "mode": "standard"},
        connect_timeout=settings.connect_timeout_s,
        read_timeout=settings.read_timeout_s,
        max_pool_connections=max(10, settings.max_concurrency * 2),
        # Newer botocore adds CRC checksums to every request by default; several S3-compatible
        # servers reject or mishandle them. Integrity comes from the manifest's sha256 anyway.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    try:
        # Without explicit keys the Session's credential chain is used, and a Session
        # caches what it finds: such a client gets a Session of its own.
        session = _shared_session() if settings.access_key_id else boto3.session.Session()
        with _SESSION_LOCK:  # a boto3 Session is not thread-safe
            return session.client(
                "s3",
                aws_access_key_id=settings.access_key_id,
                aws_secret_access_key=settings.secret_access_key,
                aws_session_token=settings.session_token,
                region_name=settings.region,
                endpoint_url=settings.endpoint_url,
                config=config,
            )
    except (botocore.exceptions.BotoCoreError, ValueError) as exc:
        raise StorageError(f"could not create the S3 client: {_describe(exc)}") from None


# --- errors --------------------------------------------------------------------------------

_NOT_FOUND = {"404", "NoSuchKey", "NoSuchBucket", "NotFound"}
_DENIED = {"403", "AccessDenied", "Forbidden", "AllAccessDisabled"}
_BAD_CREDENTIALS = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken"}


def _describe(exc: BaseException) -> str:
    # botocore messages carry the operation and error code, never the credentials; still,
    # keep only the first line so a server that echoes request details cannot spill them.
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def translate_error(exc: Exception, uri: str, action: str) -> StorageError:
    """The project's exception for a boto3/botocore failure while ``action``-ing ``uri``."""
    if isinstance(exc, StorageError):
        return exc
    if isinstance(exc, botocore.exceptions.ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = str(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
        message = error.get("Message") or code or status
        if code in _NOT_FOUND or status == "404":
            what = "bucket" if code == "NoSuchBucket" else "object"
            return ObjectNotFoundError(f"{uri}: {what} not found ({action})")
        if code in _BAD_CREDENTIALS:
            return CredentialsError(f"{uri}: credentials rejected while {action}: {code}")
        if code in _DENIED or status == "403":
            return AccessDeniedError(f"{uri}: access denied while {action} ({code or status})")
        if status.startswith("5") or code in {"SlowDown", "ServiceUnavailable", "RequestTimeout"}:
            return StorageUnavailableError(f"{uri}: server error while {action}: {code} {message}")
        return StorageError(f"{uri}: {action} failed: {code} {message}".rstrip())
    if isinstance(
        exc, botocore.exceptions.NoCredentialsError | botocore.exceptions.PartialCredentialsError
    ):
        return CredentialsError(
            f"{uri}: no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        )
    if isinstance(
        exc,
        botocore.exceptions.EndpointConnectionError
        | botocore.exceptions.ConnectTimeoutError
        | botocore.exceptions.ReadTimeoutError
        | botocore.exceptions.ConnectionClosedError,
    ):
        return StorageUnavailableError(
            f"{uri}: storage unreachable while {action}: {_describe(exc)}"
        )
    if isinstance(exc, botocore.exceptions.BotoCoreError):
        return StorageError(f"{uri}: {action} failed: {_describe(exc)}")
    if isinstance(exc, FileNotFoundError):
        return ObjectNotFoundError(f"{uri}: not found ({action})")
    if isinstance(exc, PermissionError):
        return AccessDeniedError(f"{uri}: permission denied while {action}")
    if isinstance(exc, OSError):
        return StorageError(f"{uri}: {action} failed: {exc.strerror or exc}")
    raise exc
