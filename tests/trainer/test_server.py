"""The model server in-process: ready only for a verified, loaded version; KServe v2 inference.

The protocol conformance suite, against a server process, is in tests/server/."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.trainer.support import LABELS, file_prefix, make_tiny_base, publish_dir
from warmstart import record
from warmstart.storage import Storage
from warmstart_trainer.oip_codec import ProtocolError, parse_infer_request
from warmstart_trainer.server import ServerSettings, build_app


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_base(tmp_path_factory.mktemp("clf") / "checkpoint", seed=3, labels=LABELS)


@pytest.fixture
def published(tmp_path: Path, classifier_dir: Path) -> tuple[Storage, str, str]:
    store = Storage()
    uri = file_prefix(tmp_path / "bucket" / "reviews" / "v1")
    digest = publish_dir(store, classifier_dir, uri, labels=LABELS)
    return store, uri, digest


Scenario = Callable[[aiohttp.ClientSession, str], Awaitable[None]]


def serve(store: Storage, settings: ServerSettings, scenario: Scenario) -> None:
    """Run the app on 127.0.0.1 with an OS-chosen port, run ``scenario``, shut down."""

    async def main() -> None:
        runner = web.AppRunner(build_app(settings, store))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        try:
            async with aiohttp.ClientSession() as session:
                await scenario(session, f"http://{host}:{port}")
        finally:
            await runner.cleanup()

    asyncio.run(main())


async def wait_ready(session: aiohttp.ClientSession, base: str, seconds: float) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        async with session.get(f"{base}/v2/health/ready") as response:
            body: dict[str, Any] = await response.json()
            if response.status == 200:
                return body
            assert response.status == 503
            if body["reason"] != "loading" or asyncio.get_running_loop().time() > deadline:
                return body
        await asyncio.sleep(0.1)


def settings(tmp_path: Path, uri: str, digest: str | None) -> ServerSettings:
    return ServerSettings(
        uri=uri,
        model_name="reviews",
        workdir=tmp_path / "work",
        expected_digest=digest,
        device="cpu",
    )


def test_verified_version_becomes_ready_and_answers(
    published: tuple[Storage, str, str], tmp_path: Path
) -> None:
    store, uri, digest = published

    async def scenario(session: aiohttp.ClientSession, base: str) -> None:
        async with session.get(f"{base}/v2/health/live") as response:
            assert response.status == 200
        assert await wait_ready(session, base, 60) == {"ready": True}
        async with session.get(f"{base}/v2/models/reviews") as response:
            metadata = await response.json()
            assert metadata["versions"] == ["v1"]
            assert metadata["parameters"]["labels"] == list(LABELS)
            assert metadata["parameters"]["manifestDigest"] == digest
        request = {
            "id": "r1",
            "inputs": [
                {
                    "name": "text",
                    "datatype": "BYTES",
                    "shape": [3],
                    "data": ["a great film", "an awful plot", "the movie"],
                }
            ],
        }
        async with session.post(f"{base}/v2/models/reviews/infer", json=request) as response:
            assert response.status == 200
            answer = await response.json()
        assert answer["model_name"] == "reviews" and answer["model_version"] == "v1"
        assert answer["id"] == "r1"
        outputs = {output["name"]: output for output in answer["outputs"]}
        assert outputs["label"]["shape"] == [3]
        assert set(outputs["label"]["data"]) <= set(LABELS)
        probabilities = outputs["probabilities"]
        assert probabilities["shape"] == [3, 2] and probabilities["datatype"] == "FP32"
        rows = [probabilities["data"][i : i + 2] for i in range(0, 6, 2)]
        assert all(abs(sum(row) - 1) < 1e-4 for row in rows)
        assert [LABELS[row.index(max(row))] for row in rows] == outputs["label"]["data"]

        async with session.post(
            f"{base}/v2/models/reviews/infer",
            json={"inputs": [{"name": "text", "datatype": "FP32", "shape": [1], "data": [1.0]}]},
        ) as response:
            assert response.status == 400
            assert "BYTES" in (await response.json())["error"]
        async with session.post(f"{base}/v2/models/other/infer", json=request) as response:
            assert response.status == 404
        async with session.get(f"{base}/metrics") as response:
            text = await response.text()
        assert "warmstart_server_ready 1.0" in text
        assert 'warmstart_server_model_info{manifest_digest="' + digest in text
        assert "warmstart_server_inference_texts_total 3.0" in text

    serve(store, settings(tmp_path, uri, digest), scenario)


def test_corrupted_version_never_becomes_ready(
    published: tuple[Storage, str, str], tmp_path: Path
) -> None:
    store, uri, digest = published
    weights = record.file_uri(uri, "model.safetensors")
    data = bytearray(store.get_bytes(weights))
    data[len(data) // 2] ^= 0xFF
    store.put_bytes(weights, bytes(data))

    async def scenario(session: aiohttp.ClientSession, base: str) -> None:
        body = await wait_ready(session, base, 60)
        assert body["ready"] is False
        assert "digest mismatch" in body["reason"] and "model.safetensors" in body["reason"]
        await asyncio.sleep(0.5)  # and it stays that way
        async with session.get(f"{base}/v2/health/ready") as response:
            assert response.status == 503
        async with session.post(
            f"{base}/v2/models/reviews/infer",
            json={"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": ["x"]}]},
        ) as response:
            assert response.status == 503
        async with session.get(f"{base}/v2/health/live") as response:
            assert response.status == 200  # alive: the rollout stalls instead of crash-looping
        async with session.get(f"{base}/metrics") as response:
            text = await response.text()
        assert "warmstart_server_ready 0.0" in text
        assert "warmstart_server_load_failures_total 1.0" in text

    serve(store, settings(tmp_path, uri, digest), scenario)
    assert not (tmp_path / "work" / "model").exists()  # nothing half-verified left to load


def test_pinned_digest_mismatch_never_becomes_ready(
    published: tuple[Storage, str, str], tmp_path: Path
) -> None:
    store, uri, _ = published

    async def scenario(session: aiohttp.ClientSession, base: str) -> None:
        body = await wait_ready(session, base, 60)
        assert body["ready"] is False and "digest mismatch" in body["reason"]

    serve(store, settings(tmp_path, uri, "sha256:" + "0" * 64), scenario)


def test_base_without_trained_head_is_not_served(tmp_path: Path, classifier_dir: Path) -> None:
    store = Storage()
    uri = file_prefix(tmp_path / "bucket" / "reviews" / "v0")
    digest = publish_dir(store, classifier_dir, uri)  # published without labels

    async def scenario(session: aiohttp.ClientSession, base: str) -> None:
        body = await wait_ready(session, base, 60)
        assert body["ready"] is False and "no trained classification head" in body["reason"]

    serve(store, settings(tmp_path, uri, digest), scenario)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"inputs": []},
        {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [2], "data": ["a"]}]},
        {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": [5]}]},
        {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [0], "data": []}]},
        {"inputs": [{"name": "other", "datatype": "BYTES", "shape": [1], "data": ["a"]}]},
    ],
)
def test_malformed_requests_are_refused(body: dict[str, Any]) -> None:
    with pytest.raises(ProtocolError):
        parse_infer_request(json.dumps(body).encode(), None, max_texts=8)


def test_texts_accept_flat_and_column_shapes() -> None:
    flat = {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [2], "data": ["a", "b"]}]}
    column = {
        "inputs": [
            {"name": "text", "datatype": "BYTES", "shape": [2, 1], "data": [["a"], ["b"]]}
        ]
    }
    texts = [parse_infer_request(json.dumps(b).encode(), None, max_texts=8).texts
             for b in (flat, column)]
    assert texts == [["a", "b"], ["a", "b"]]
    with pytest.raises(ProtocolError, match="at most 1"):
        parse_infer_request(json.dumps(flat).encode(), None, max_texts=1)
