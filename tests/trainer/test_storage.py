"""Object storage: URIs, settings, error translation, local and S3 backends."""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Any

import botocore.exceptions
import pytest

from warmstart import storage
from warmstart.storage import S3Settings, Storage


def test_s3_uris_parse_into_bucket_and_key() -> None:
    assert storage.parse_s3_uri("s3://models/reviews/v1/model.safetensors") == storage.S3Location(
        "models", "reviews/v1/model.safetensors"
    )
    assert storage.parse_s3_uri("s3://models").key == ""
    for bad in ("http://models/x", "s3:///key", "s3://b/k?versionId=1", "models/x"):
        with pytest.raises(storage.InvalidURIError):
            storage.parse_s3_uri(bad)
    with pytest.raises(storage.InvalidURIError, match="unsupported scheme"):
        Storage(S3Settings()).get_bytes("gs://bucket/key")


def test_settings_come_from_env_and_never_show_the_secret() -> None:
    env = {
        "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "very-secret-value",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:8333",
        "AWS_REGION": "eu-west-1",
    }
    settings = S3Settings.from_env(env)
    assert settings.endpoint_url == "http://127.0.0.1:8333"
    assert settings.region == "eu-west-1"
    assert settings.secret_access_key == "very-secret-value"
    for text in (repr(settings), str(settings), f"{settings}"):
        assert "very-secret-value" not in text and "AKIDEXAMPLE" not in text
    assert S3Settings.from_env({**env, "AWS_ENDPOINT_URL_S3": "http://s3.local"}).endpoint_url == (
        "http://s3.local"
    )
    assert S3Settings.from_env({}).region == "us-east-1"


def _client_error(code: str, status: int) -> botocore.exceptions.ClientError:
    response: Any = {
        "Error": {"Code": code, "Message": f"{code} message"},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return botocore.exceptions.ClientError(response, "GetObject")


@pytest.mark.parametrize(
    ("error", "kind", "text"),
    [
        (_client_error("NoSuchKey", 404), storage.ObjectNotFoundError, "object not found"),
        (_client_error("NoSuchBucket", 404), storage.ObjectNotFoundError, "bucket not found"),
        (_client_error("AccessDenied", 403), storage.AccessDeniedError, "access denied"),
        (_client_error("SignatureDoesNotMatch", 403), storage.CredentialsError, "credentials"),
        (_client_error("InternalError", 500), storage.StorageUnavailableError, "server error"),
        (_client_error("InvalidRange", 416), storage.StorageError, "InvalidRange"),
        (botocore.exceptions.NoCredentialsError(), storage.CredentialsError, "AWS_ACCESS_KEY_ID"),
        (
            botocore.exceptions.EndpointConnectionError(endpoint_url="http://127.0.0.9:1"),
            storage.StorageUnavailableError,
            "unreachable",
        ),
        (FileNotFoundError(2, "No such file"), storage.ObjectNotFoundError, "not found"),
    ],
)
def test_botocore_errors_become_project_errors(error: Exception, kind: type, text: str) -> None:
    translated = storage.translate_error(error, "s3://b/k", "reading")
    assert type(translated) is kind
    assert str(translated).startswith("s3://b/k")
    assert text in str(translated)


def test_local_backend_reads_writes_lists_and_deletes(tmp_path: Path) -> None:
    store = Storage(S3Settings())
    root = (tmp_path / "bucket").as_uri() + "/"
    store.put_bytes(root + "a/one.txt", b"1")
    source = tmp_path / "two.bin"
    source.write_bytes(b"22")
    store.upload_file(source, root + "a/b/two.bin")
    assert store.get_bytes(root + "a/one.txt") == b"1"
    assert store.exists(root + "a/b/two.bin") and not store.exists(root + "a/none")
    assert [(i.uri.removeprefix(root), i.size) for i in store.list(root + "a/")] == [
        ("a/b/two.bin", 2),
        ("a/one.txt", 1),
    ]
    store.download_file(root + "a/b/two.bin", tmp_path / "out" / "two.bin")
    assert (tmp_path / "out" / "two.bin").read_bytes() == b"22"
    assert list((tmp_path / "out").iterdir()) == [tmp_path / "out" / "two.bin"]  # no temp left
    with pytest.raises(storage.ObjectNotFoundError):
        store.get_bytes(root + "missing")
    with pytest.raises(storage.ObjectNotFoundError):
        store.download_file(root + "missing", tmp_path / "out" / "missing")
    assert not (tmp_path / "out" / "missing").exists()
    assert store.delete_prefix(root + "a/") == 2
    assert store.list(root) == []


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_s3_round_trip(s3_bucket: str, s3_env: dict[str, str]) -> None:
    store = Storage.from_env(s3_env)
    prefix = f"s3://{s3_bucket}/lineage/v1/"
    store.put_bytes(prefix + "config.json", b"{}", content_type="application/json")
    assert store.get_bytes(prefix + "config.json") == b"{}"
    assert store.exists(prefix + "config.json")
    assert not store.exists(prefix + "missing.json")
    assert [i.uri for i in store.list(prefix)] == [prefix + "config.json"]
    assert b"".join(store.iter_chunks(prefix + "config.json")) == b"{}"
    with pytest.raises(storage.ObjectNotFoundError, match="object not found"):
        store.get_bytes(prefix + "missing.json")
    store.delete(prefix + "config.json")
    store.delete(prefix + "config.json")  # deleting twice is fine
    assert store.list(prefix) == []


def test_s3_multipart_upload_and_ranged_download(
    s3_bucket: str, s3_env: dict[str, str], s3_client: Any, tmp_path: Path
) -> None:
    base = S3Settings.from_env(s3_env)
    settings = S3Settings(
        access_key_id=base.access_key_id,
        secret_access_key=base.secret_access_key,
        endpoint_url=base.endpoint_url,
        region=base.region,
        multipart_threshold=5 * 1024 * 1024,
        multipart_chunksize=5 * 1024 * 1024,
        max_concurrency=4,
    )
    store = Storage(settings)
    data = os.urandom(12 * 1024 * 1024 + 123)
    source = tmp_path / "weights.safetensors"
    source.write_bytes(data)
    uri = f"s3://{s3_bucket}/big/weights.safetensors"
    store.upload_file(source, uri)
    etag = s3_client.head_object(Bucket=s3_bucket, Key="big/weights.safetensors")["ETag"]
    assert etag.strip('"').endswith("-3")  # three parts: a multipart upload
    store.download_file(uri, tmp_path / "copy" / "weights.safetensors")
    assert _sha((tmp_path / "copy" / "weights.safetensors").read_bytes()) == _sha(data)
    many = [(uri, tmp_path / f"copy{i}" / "w") for i in range(3)]
    store.download_files(many)
    assert all(_sha(path.read_bytes()) == _sha(data) for _, path in many)
    assert store.delete_prefix(f"s3://{s3_bucket}/big/") == 1


def test_s3_missing_bucket_and_bad_credentials_are_clear(
    s3_bucket: str, s3_env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    store = Storage.from_env(s3_env)
    with pytest.raises(storage.ObjectNotFoundError):
        store.get_bytes(f"s3://{s3_bucket}-nope/key")
    secret = "definitely-not-the-secret"
    bad = Storage.from_env({**s3_env, "AWS_SECRET_ACCESS_KEY": secret})
    with pytest.raises((storage.CredentialsError, storage.AccessDeniedError)) as caught:
        bad.put_bytes(f"s3://{s3_bucket}/x", b"x")
    assert secret not in str(caught.value)
    assert secret not in caplog.text
    assert s3_env["AWS_SECRET_ACCESS_KEY"] not in caplog.text
