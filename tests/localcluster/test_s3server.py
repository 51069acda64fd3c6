"""The local S3 server is a real one: multipart, ranges, listing, auth."""

from __future__ import annotations

import hashlib
import os
from typing import Any

import pytest
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from tests.conftest import LocalCluster


def test_put_get_list_delete(s3_client: Any, s3_bucket: str) -> None:
    for key in ("a/1.txt", "a/2.txt", "b/3.txt"):
        s3_client.put_object(Bucket=s3_bucket, Key=key, Body=key.encode())
    assert s3_client.get_object(Bucket=s3_bucket, Key="a/2.txt")["Body"].read() == b"a/2.txt"
    listed = s3_client.list_objects_v2(Bucket=s3_bucket, Prefix="a/")
    assert sorted(o["Key"] for o in listed["Contents"]) == ["a/1.txt", "a/2.txt"]
    s3_client.delete_object(Bucket=s3_bucket, Key="a/1.txt")
    listed = s3_client.list_objects_v2(Bucket=s3_bucket, Prefix="a/")
    assert [o["Key"] for o in listed["Contents"]] == ["a/2.txt"]
    with pytest.raises(ClientError) as err:
        s3_client.get_object(Bucket=s3_bucket, Key="a/1.txt")
    assert err.value.response["Error"]["Code"] == "NoSuchKey"


def test_multipart_upload_of_64_mib_and_ranged_get(
    s3_client: Any, s3_bucket: str, tmp_path: Any
) -> None:
    data = os.urandom(64 * 1024 * 1024)
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    config = TransferConfig(multipart_threshold=8 * 1024 * 1024,
                            multipart_chunksize=8 * 1024 * 1024, max_concurrency=4)
    s3_client.upload_file(str(src), s3_bucket, "big.bin", Config=config)
    head = s3_client.head_object(Bucket=s3_bucket, Key="big.bin")
    assert head["ContentLength"] == len(data)
    # A multipart ETag is "<md5 of part md5s>-<parts>": proof it really went multipart.
    assert head["ETag"].strip('"').endswith("-8")
    part = s3_client.get_object(Bucket=s3_bucket, Key="big.bin",
                                Range="bytes=10485760-10485859")["Body"].read()
    assert part == data[10485760:10485860]
    dst = tmp_path / "back.bin"
    s3_client.download_file(s3_bucket, "big.bin", str(dst), Config=config)
    assert hashlib.sha256(dst.read_bytes()).digest() == hashlib.sha256(data).digest()


def test_wrong_credentials_are_refused(cluster: LocalCluster, s3_bucket: str) -> None:
    intruder = cluster.s3_client(secret_key="not-the-secret")
    with pytest.raises(ClientError) as err:
        intruder.list_objects_v2(Bucket=s3_bucket)
    assert err.value.response["Error"]["Code"] in {"SignatureDoesNotMatch", "AccessDenied"}
    stranger = cluster.s3_client(access_key="nobody", secret_key="nothing")
    with pytest.raises(ClientError) as err:
        stranger.put_object(Bucket=s3_bucket, Key="x", Body=b"x")
    assert err.value.response["Error"]["Code"] in {"InvalidAccessKeyId", "AccessDenied"}
