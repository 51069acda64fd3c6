"""Object storage: the project's one way to S3 (storage_base.py, the only importer of
boto3, holds its errors, URIs, settings and client; this module the operations).

Everything else names objects by URI and calls ``Storage``. ``s3://bucket/key`` goes to an
S3-compatible server through boto3, with parallel multipart uploads and parallel ranged
downloads (boto3's transfer manager); ``file:///abs/path`` goes to the local filesystem, for
hand runs and tests that need no server. botocore's exceptions never leave these two modules: they
become ``StorageError`` subclasses whose messages name the URI and what went wrong, and never
contain a credential.
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from warmstart import record
from warmstart.storage_base import (
    AccessDeniedError,
    CredentialsError,
    InvalidURIError,
    MiB,
    ObjectNotFoundError,
    S3Location,
    S3Settings,
    StorageError,
    StorageUnavailableError,
    join,
    local_path,
    make_s3_client,
    parse_s3_uri,
    scheme,
    translate_error,
)

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

# The names callers import from here; their definitions live in storage_base.py.
__all__ = [
    "AccessDeniedError", "CredentialsError", "InvalidURIError", "ObjectInfo",
    "ObjectNotFoundError", "S3Location", "S3Settings", "Storage", "StorageError",
    "StorageUnavailableError", "join", "parse_s3_uri", "scheme", "translate_error",
]

_T = TypeVar("_T")


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
            self._run(uri, "writing", lambda: _atomic_write(local_path(uri), data))
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
            return self._run(uri, "reading", lambda: local_path(uri).read_bytes())
        loc = parse_s3_uri(uri)

        def read() -> bytes:
            body = self.s3.get_object(Bucket=loc.bucket, Key=loc.key)["Body"]
            try:
                return body.read()
            finally:
                body.close()

        return self._run(uri, "reading", read)

    def iter_chunks(self, uri: str, chunk_size: int = MiB) -> Iterator[bytes]:
        """Stream an object's content (hashing without a local copy)."""
        if scheme(uri) == "file":
            try:
                with local_path(uri).open("rb") as handle:
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
            target = local_path(uri)
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
                self._run(uri, "reading", lambda: shutil.copyfile(local_path(uri), tmp))
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
            return local_path(uri).is_file()
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
            root = local_path(prefix_uri)
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
            self._run(uri, "deleting", lambda: local_path(uri).unlink(missing_ok=True))
            return
        loc = parse_s3_uri(uri)
        self._run(uri, "deleting", lambda: self.s3.delete_object(Bucket=loc.bucket, Key=loc.key))

    def delete_prefix(self, prefix_uri: str) -> int:
        """Delete every object under ``prefix_uri``; returns how many."""
        objects = self.list(prefix_uri)
        if scheme(prefix_uri) == "file":
            for info in objects:
                self.delete(info.uri)
            root = local_path(prefix_uri)
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
