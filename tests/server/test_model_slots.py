"""Batches run on per-instance threads: a lone client's requests always on slot 0, whose
OpenMP team stays warm; batches that run together on slots of their own."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import cast

import numpy as np
import numpy.typing as npt
import pytest

from tests.server.support import MODEL
from warmstart.storage import S3Settings, Storage
from warmstart_trainer.serving_model import LoadedModel
from warmstart_trainer.serving_settings import ServerSettings
from warmstart_trainer.serving_state import ServerState


class RecordingModel:
    """Stands in for the loaded model: records which thread ran each batch."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.threads: list[str] = []

    def predict(self, texts: list[str], threads: int = 0) -> npt.NDArray[np.float32]:
        self.threads.append(threading.current_thread().name)
        time.sleep(self.seconds)
        return np.full((len(texts), 2), 0.5, dtype=np.float32)


def state_with(model: RecordingModel, monkeypatch: pytest.MonkeyPatch) -> ServerState:
    monkeypatch.setenv("WARMSTART_MODEL_INSTANCES", "2")
    store = Storage(S3Settings.from_env({"AWS_ACCESS_KEY_ID": "k",
                                         "AWS_SECRET_ACCESS_KEY": "s"}))
    state = ServerState(ServerSettings(uri="file:///x/", model_name=MODEL,
                                       workdir=Path("/tmp")), store)
    state.loaded = cast(LoadedModel, model)
    return state


def test_a_lone_client_runs_every_batch_on_the_first_slot(
        monkeypatch: pytest.MonkeyPatch) -> None:
    model = RecordingModel(seconds=0.001)
    state = state_with(model, monkeypatch)

    async def sequential() -> None:
        state.batcher.start()
        for index in range(12):
            assert len(await state.batcher.submit([f"text {index}"])) == 1
        await state.batcher.close()

    asyncio.run(sequential())
    state.shutdown_executors()
    assert model.threads == ["model-0_0"] * 12


def test_batches_that_run_together_take_a_slot_each_and_free_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    model = RecordingModel(seconds=0.05)
    state = state_with(model, monkeypatch)

    async def together() -> None:
        first = await asyncio.gather(state._run_batch(["a"]), state._run_batch(["b", "c"]))
        assert [len(rows) for rows in first] == [1, 2]
        await state._run_batch(["d"])  # both slots free again: the first one

    asyncio.run(together())
    state.shutdown_executors()
    assert sorted(model.threads[:2]) == ["model-0_0", "model-1_0"]
    assert model.threads[2] == "model-0_0"
