"""Object storage: the one module of the project that talks to S3 (and imports boto3).

Everything else names objects by URI and calls ``Storage``. ``s3://bucket/key`` goes to an
S3-compatible server through boto3, with parallel multipart uploads and parallel ranged
downloads (boto3's transfer manager); ``file:///abs/path`` goes to the local filesystem, for
hand runs and tests that need no server. botocore's exceptions never leave this module: they
become ``StorageError`` subclasses whose messages name the URI and what went wrong, and never
contain a credential.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import tempfile
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import boto3
import botocore.config
import botocore.exceptions
from boto3.s3.transfer import TransferConfig

from warmstart import record

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

log = logging.getLogger(__name__)

_MiB = 1024 * 1024
_T = TypeVar("_T")


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


def _local_path(uri: str) -> Path:
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
    multipart_threshold: int = 16 * _MiB
    multipart_chunksize: int = 16 * _MiB
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
        session = boto3.session.Session(
            aws_access_key_id=settings.access_key_id,
            aws_secret_access_key=settings.secret_access_key,
            aws_session_token=settings.session_token,
            region_name=settings.region,
        )
        return session.client("s3", endpoint_url=settings.endpoint_url, config=config)
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


# --- the storage facade --------------------------------------------------------------------


@dataclass(frozen=True)
class ObjectInfo:
    uri: str
    size: int


class Storage:
    """Object operations by URI. Thread-safe; the S3 client is made on first use."""

    def __init__(self, settings: S3Settings | None = None, *, client: S3Client | None = None):
        self._settings = settings or S3Settings.from_env()
        self._client = client

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Storage:
        return cls(S3Settings.from_env(env))

    @property
    def settings(self) -> S3Settings:
        return self._settings

    @property
    def s3(self) -> S3Client:
        if self._client is None:
            self._client = make_s3_client(self._settings)
        return self._client

    def _run(self, uri: str, action: str, operation: Callable[[], _T]) -> _T:
        try:
            return operation()
        except Exception as exc:
            raise translate_error(exc, uri, action) from None

    # bytes

    def put_bytes(self, uri: str, data: bytes, *, content_type: str | None = None) -> None:
        if scheme(uri) == "file":
            self._run(uri, "writing", lambda: _atomic_write(_local_path(uri), data))
            return
        loc = parse_s3_uri(uri)
        extra: dict[str, Any] = {"ContentType": content_type} if content_type else {}
        self._run(
            uri,
            "writing",
            lambda: self.s3.put_object(Bucket=loc.bucket, Key=loc.key, Body=data, **extra),
        )

    def get_bytes(self, uri: str) -> bytes:
        if scheme(uri) == "file":
            return self._run(uri, "reading", lambda: _local_path(uri).read_bytes())
        loc = parse_s3_uri(uri)

        def read() -> bytes:
            body = self.s3.get_object(Bucket=loc.bucket, Key=loc.key)["Body"]
            try:
                return body.read()
            finally:
                body.close()

        return self._run(uri, "reading", read)

    def iter_chunks(self, uri: str, chunk_size: int = _MiB) -> Iterator[bytes]:
        """Stream an object's content (hashing without a local copy)."""
        if scheme(uri) == "file":
            try:
                with _local_path(uri).open("rb") as handle:
                    yield from iter(lambda: handle.read(chunk_size), b"")
            except OSError as exc:
                raise translate_error(exc, uri, "reading") from None
            return
        loc = parse_s3_uri(uri)
        body = self._run(
            uri, "reading", lambda: self.s3.get_object(Bucket=loc.bucket, Key=loc.key)["Body"]
        )
        try:
            while True:
                chunk = self._run(uri, "reading", lambda: body.read(chunk_size))
                if not chunk:
                    return
                yield chunk
        finally:
            body.close()

    # files

    def upload_file(self, path: Path, uri: str) -> None:
        """Upload a local file; large ones go as parallel multipart uploads."""
        if scheme(uri) == "file":
            target = _local_path(uri)
            self._run(uri, "writing", lambda: _atomic_copy(path, target))
            return
        loc = parse_s3_uri(uri)
        self._run(
            uri,
            "uploading",
            lambda: self.s3.upload_file(
                str(path), loc.bucket, loc.key, Config=self._settings.transfer_config()
            ),
        )

    def download_file(self, uri: str, path: Path) -> None:
        """Download to ``path`` (parents created); large objects as parallel ranged GETs.

        The data lands in a temporary file beside ``path`` first, so an interrupted transfer
        never leaves a truncated file under the final name.
        """
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            if scheme(uri) == "file":
                self._run(uri, "reading", lambda: shutil.copyfile(_local_path(uri), tmp))
            else:
                loc = parse_s3_uri(uri)
                self._run(
                    uri,
                    "downloading",
                    lambda: self.s3.download_file(
                        loc.bucket, loc.key, str(tmp), Config=self._settings.transfer_config()
                    ),
                )
            tmp.replace(path)
        finally:
            tmp.unlink(missing_ok=True)

    def download_files(self, pairs: list[tuple[str, Path]]) -> None:
        """Download several objects concurrently (each may itself be a ranged transfer)."""
        self._parallel([functools.partial(self.download_file, uri, path) for uri, path in pairs])

    def upload_files(self, pairs: list[tuple[Path, str]]) -> None:
        self._parallel([functools.partial(self.upload_file, path, uri) for path, uri in pairs])

    def _parallel(self, tasks: list[Callable[[], None]]) -> None:
        if len(tasks) <= 1:
            for task in tasks:
                task()
            return
        workers = min(len(tasks), max(1, self._settings.max_concurrency // 2))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="storage") as pool:
            for future in [pool.submit(task) for task in tasks]:
                future.result()

    # listing

    def exists(self, uri: str) -> bool:
        if scheme(uri) == "file":
            return _local_path(uri).is_file()
        loc = parse_s3_uri(uri)
        try:
            self.s3.head_object(Bucket=loc.bucket, Key=loc.key)
        except Exception as exc:
            error = translate_error(exc, uri, "checking")
            if isinstance(error, ObjectNotFoundError):
                return False
            raise error from None
        return True

    def list(self, prefix_uri: str) -> list[ObjectInfo]:
        """Every object under ``prefix_uri`` (recursively), sorted by URI."""
        if scheme(prefix_uri) == "file":
            root = _local_path(prefix_uri)
            if not root.is_dir():
                return []
            return sorted(
                (
                    ObjectInfo(uri=path.as_uri(), size=path.stat().st_size)
                    for path in root.rglob("*")
                    if path.is_file() and not path.name.startswith(".tmp-")
                ),
                key=lambda info: info.uri,
            )
        loc = parse_s3_uri(prefix_uri)

        def collect() -> list[ObjectInfo]:
            found = []
            paginator = self.s3.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=loc.bucket, Prefix=loc.key):
                for item in page.get("Contents", []):
                    found.append(ObjectInfo(f"s3://{loc.bucket}/{item['Key']}", item["Size"]))
            return sorted(found, key=lambda info: info.uri)

        return self._run(prefix_uri, "listing", collect)

    # deleting

    def delete(self, uri: str) -> None:
        """Delete one object; deleting a missing object is not an error."""
        if scheme(uri) == "file":
            self._run(uri, "deleting", lambda: _local_path(uri).unlink(missing_ok=True))
            return
        loc = parse_s3_uri(uri)
        self._run(uri, "deleting", lambda: self.s3.delete_object(Bucket=loc.bucket, Key=loc.key))

    def delete_prefix(self, prefix_uri: str) -> int:
        """Delete every object under ``prefix_uri``; returns how many."""
        objects = self.list(prefix_uri)
        if scheme(prefix_uri) == "file":
            for info in objects:
                self.delete(info.uri)
            root = _local_path(prefix_uri)
            if root.is_dir():
                shutil.rmtree(root, ignore_errors=True)
            return len(objects)
        loc = parse_s3_uri(prefix_uri)
        keys = [parse_s3_uri(info.uri).key for info in objects]
        for start in range(0, len(keys), 1000):  # DeleteObjects takes at most 1000 keys
            batch = [{"Key": key} for key in keys[start : start + 1000]]
            self._run(
                prefix_uri,
                "deleting",
                lambda b=batch: self.s3.delete_objects(  # type: ignore[misc]
                    Bucket=loc.bucket, Delete={"Objects": b, "Quiet": True}
                ),
            )
        return len(keys)

    # the lineage record, read from storage (record.RecordReader)

    def read_manifest(self, version_prefix: str) -> bytes:
        return self.get_bytes(record.manifest_uri(version_prefix))

    def file_digest(self, version_prefix: str, name: str) -> str:
        return record.sha256_chunks(self.iter_chunks(record.file_uri(version_prefix, name)))


# --- local filesystem helpers ----------------------------------------------------------------


def _atomic_write(path: Path, data: bytes) -> None:
    # Write-then-rename, like an S3 PUT: a reader sees the old object or the whole new one.
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def _atomic_copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".tmp-", dir=target.parent)
    os.close(fd)
    try:
        shutil.copyfile(source, tmp_name)
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
