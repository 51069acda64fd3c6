"""The three subcommands as a pod runs them, against the real S3 server."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.trainer.support import SpecBuilder, sentiment_rows, write_jsonl


def _cli(*args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "warmstart_trainer", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_publish_train_serve_verify_through_s3(
    s3_bucket: str, s3_env: dict[str, str], s3_client: Any, tiny_base_dir: Path, tmp_path: Path
) -> None:
    env = {**os.environ, **s3_env, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    storage_uri = f"s3://{s3_bucket}/reviews/"

    published = _cli(
        "publish-base",
        "--dir",
        str(tiny_base_dir),
        "--uri",
        storage_uri + "v0/",
        "--lineage",
        "reviews",
        env=env,
    )
    assert published.returncode == 0, published.stderr
    base_digest = published.stdout.strip()
    assert base_digest.startswith("sha256:")
    again = _cli(
        "publish-base",
        "--dir",
        str(tiny_base_dir),
        "--uri",
        storage_uri + "v0/",
        "--lineage",
        "reviews",
        env=env,
    )
    assert again.stdout.strip() == base_digest  # idempotent

    for name, rows in (("train", sentiment_rows(96, 1)), ("holdout", sentiment_rows(30, 2))):
        path = tmp_path / f"{name}.jsonl"
        write_jsonl(path, rows)
        s3_client.upload_file(str(path), s3_bucket, f"data/{name}.jsonl")
    builder = SpecBuilder(
        storage_uri + "v0/", base_digest, f"s3://{s3_bucket}/data/train.jsonl", storage_uri + "v1/"
    )
    builder.training(maxEpochs=2, checkpointEverySteps=5).evaluation(
        holdoutURI=f"s3://{s3_bucket}/data/holdout.jsonl"
    )
    spec = builder.write(tmp_path / "spec.json")
    termination = tmp_path / "termination-log"
    trained = _cli(
        "train",
        "--spec",
        str(spec),
        env={
            **env,
            "WARMSTART_WORKDIR": str(tmp_path / "work"),
            "TERMINATION_MESSAGE_PATH": str(termination),
        },
    )
    assert trained.returncode == 0, trained.stderr
    assert s3_env["AWS_SECRET_ACCESS_KEY"] not in trained.stderr + trained.stdout
    summary = json.loads(termination.read_text())
    assert summary["result"] == "Succeeded" and summary["version"] == "v1"
    assert summary["parent"]["manifestDigest"] == base_digest
    keys = [
        o["Key"]
        for o in s3_client.list_objects_v2(Bucket=s3_bucket, Prefix="reviews/v1/")["Contents"]
    ]
    assert "reviews/v1/manifest.json" in keys
    assert not [key for key in keys if "/_progress/" in key]

    verified = _cli(
        "verify", "--uri", storage_uri + "v1/", "--digest", summary["manifestDigest"], env=env
    )
    assert verified.returncode == 0, verified.stderr
    assert [line.split("\t")[0] for line in verified.stdout.splitlines()] == ["v1", "v0"]

    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "warmstart_trainer",
            "serve",
            "--uri",
            storage_uri + "v1/",
            "--digest",
            summary["manifestDigest"],
            "--port",
            str(port),
            "--model-name",
            "reviews",
        ],
        env={**env, "POD_IP": "127.0.0.1", "WARMSTART_WORKDIR": str(tmp_path / "serve")},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        status = 0
        while time.monotonic() < deadline:
            try:
                status, _ = _get(f"{base}/v2/health/ready")
            except (urllib.error.URLError, ConnectionError):
                status = 0
            if status == 200:
                break
            assert server.poll() is None, "server exited"
            time.sleep(0.2)
        assert status == 200
        request = json.dumps(
            {
                "inputs": [
                    {
                        "name": "text",
                        "datatype": "BYTES",
                        "shape": [1],
                        "data": ["a wonderful film"],
                    }
                ]
            }
        ).encode()
        with urllib.request.urlopen(
            urllib.request.Request(
                f"{base}/v2/models/reviews/infer",
                data=request,
                headers={"Content-Type": "application/json"},
            ),
            timeout=10,
        ) as response:
            answer = json.loads(response.read())
        assert answer["model_version"] == "v1"
        assert answer["outputs"][0]["data"][0] in ("negative", "positive")
    finally:
        server.terminate()
        _, stderr = server.communicate(timeout=30)
    assert server.returncode == 0, stderr
    assert s3_env["AWS_SECRET_ACCESS_KEY"] not in stderr
