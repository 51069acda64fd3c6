"""The server in-process with a model made slow on purpose: probes stay fast, the queue stays
bounded, and a failing batch answers 500 without taking the server down."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import numpy.typing as npt
import pytest
from aiohttp import web

from tests.server.support import MODEL, publish_tiny_version
from warmstart.storage import Storage
from warmstart_trainer.batcher import BatchingSettings
from warmstart_trainer.server import ServerSettings, build_app
from warmstart_trainer.serving_model import LoadedModel
from warmstart_trainer.serving_state import STATE_KEY

REQUEST = {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": ["good"]}]}


@dataclasses.dataclass
class HeldModel(LoadedModel):
    """The real model behind a gate the test opens: a forward pass as slow as wanted."""

    gate: threading.Event = dataclasses.field(default_factory=threading.Event)
    fail: bool = False

    def predict(self, texts: list[str], threads: int = 0) -> npt.NDArray[np.float32]:
        assert self.gate.wait(30)
        if self.fail:
            raise RuntimeError("CUDA out of memory (pretend)\nmore detail")
        return super().predict(texts)


Scenario = Callable[[aiohttp.ClientSession, str, HeldModel], Awaitable[None]]


def serve_held(tmp_path: Path, batching: BatchingSettings, scenario: Scenario) -> None:
    uri, digest = publish_tiny_version(tmp_path)
    settings = ServerSettings(uri=uri, model_name=MODEL, workdir=tmp_path / "work",
                              expected_digest=digest, device="cpu", batching=batching)

    async def main() -> None:
        app = build_app(settings, Storage())
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        state = app[STATE_KEY]
        held: HeldModel | None = None
        try:
            for _ in range(600):
                if state.loaded is not None:
                    break
                await asyncio.sleep(0.1)
            assert state.loaded is not None, state.failure
            held = HeldModel(**{f.name: getattr(state.loaded, f.name)
                                for f in dataclasses.fields(LoadedModel)})
            state.loaded = held
            async with aiohttp.ClientSession() as session:
                await scenario(session, f"http://{host}:{port}", held)
        finally:
            if held is not None:
                held.gate.set()
            await runner.cleanup()

    asyncio.run(main())


async def timed_get(session: aiohttp.ClientSession, url: str) -> tuple[int, float]:
    started = time.perf_counter()
    async with session.get(url) as response:
        await response.read()
        return response.status, time.perf_counter() - started


def test_probes_answer_while_a_request_is_stuck_in_the_model(tmp_path: Path) -> None:
    async def scenario(session: aiohttp.ClientSession, base: str, held: HeldModel) -> None:
        stuck = asyncio.create_task(session.post(f"{base}/v2/models/{MODEL}/infer", json=REQUEST))
        await asyncio.sleep(0.3)
        for path in ("/v2/health/live", "/v2/health/ready", f"/v2/models/{MODEL}/ready", "/v2"):
            status, seconds = await timed_get(session, base + path)
            assert status == 200 and seconds < 0.5, (path, seconds)
        assert not stuck.done()
        held.gate.set()
        async with await stuck as response:
            assert response.status == 200

    serve_held(tmp_path, BatchingSettings(max_batch_size=4), scenario)


def test_a_full_queue_answers_503_with_the_reason(tmp_path: Path) -> None:
    async def scenario(session: aiohttp.ClientSession, base: str, held: HeldModel) -> None:
        url = f"{base}/v2/models/{MODEL}/infer"
        running = asyncio.create_task(session.post(url, json=REQUEST))
        await asyncio.sleep(0.3)  # in the model now, no longer queued
        queued = [asyncio.create_task(session.post(url, json=REQUEST)) for _ in range(2)]
        await asyncio.sleep(0.3)
        async with session.post(url, json=REQUEST) as response:
            assert response.status == 503
            assert response.headers["Retry-After"] == "1"
            body = await response.json()
        assert set(body) == {"error"} and "queue is full" in body["error"]
        assert "WARMSTART_MAX_QUEUE_SIZE=2" in body["error"]
        held.gate.set()
        for task in (running, *queued):
            async with await task as answered:
                assert answered.status == 200
        async with session.get(f"{base}/metrics") as response:
            text = await response.text()
        assert 'warmstart_server_requests_total{code="503",route="/v2/models/{name}/infer"} 1.0' \
            in text
        assert "warmstart_server_queued_requests 0.0" in text

    serve_held(tmp_path, BatchingSettings(max_batch_size=1, max_queue_size=2, instances=1),
               scenario)


def test_a_failing_forward_pass_answers_500_and_the_server_goes_on(tmp_path: Path) -> None:
    async def scenario(session: aiohttp.ClientSession, base: str, held: HeldModel) -> None:
        held.fail = True
        held.gate.set()
        url = f"{base}/v2/models/{MODEL}/infer"
        async with session.post(url, json=REQUEST) as response:
            assert response.status == 500
            body: dict[str, Any] = await response.json()
        assert body == {"error": "inference failed: RuntimeError: CUDA out of memory (pretend)"}
        held.fail = False
        async with session.post(url, json=REQUEST) as response:
            assert response.status == 200

    serve_held(tmp_path, BatchingSettings(), scenario)


@pytest.mark.parametrize("value", ["12", "lots"])
def test_request_size_limit_from_env(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("WARMSTART_MAX_REQUEST_BYTES", value)
    with pytest.raises(ValueError, match="WARMSTART_MAX_REQUEST_BYTES"):
        ServerSettings(uri="file:///x/", model_name=MODEL, workdir=Path("/tmp"))
    monkeypatch.setenv("WARMSTART_MAX_REQUEST_BYTES", "65536")
    settings = ServerSettings(uri="file:///x/", model_name=MODEL, workdir=Path("/tmp"))
    assert settings.max_request_bytes == 65536


def test_a_bad_batching_setting_is_one_clear_line_not_a_traceback(tmp_path: Path) -> None:
    env = {**os.environ, "WARMSTART_MAX_BATCH_SIZE": "lots", "WARMSTART_WORKDIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "warmstart_trainer", "serve", "--uri", "s3://b/v1/"],
        env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2, done
    assert "WARMSTART_MAX_BATCH_SIZE" in done.stderr and "Traceback" not in done.stderr, done.stderr
