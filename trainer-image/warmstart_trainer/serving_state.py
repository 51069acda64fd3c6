"""The model server's settings and state, and loading the version in the background."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import numpy.typing as npt
import torch
from aiohttp import web

from warmstart import record, storage
from warmstart_trainer.batcher import DynamicBatcher
from warmstart_trainer.errors import TrainerError
from warmstart_trainer.serving_metrics import ServerMetrics
from warmstart_trainer.serving_model import LoadedModel, load_version
from warmstart_trainer.serving_settings import ServerSettings

log = logging.getLogger(__name__)

Probabilities = npt.NDArray[np.float32]


@dataclass
class ServerState:
    settings: ServerSettings
    store: storage.Storage
    metrics: ServerMetrics = field(default_factory=ServerMetrics)
    loaded: LoadedModel | None = None
    failure: str | None = None
    # One thread of its own per model instance (Triton's instance group), each running one
    # batch at a time with its own intra-op threads; the event loop stays free for probes
    # and for queueing requests. A batch takes the lowest free slot, so a lone client's
    # requests always run on slot 0, whose OpenMP team is warm: a pool of threads taking
    # turns would start each pass on a cold team while the last one's still spins.
    slots: list[ThreadPoolExecutor] = field(init=False)
    _busy: list[bool] = field(init=False)
    # Decoding and encoding large bodies, off the event loop and beside the model threads.
    codec_executor: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=2, thread_name_prefix="codec")
    )
    batcher: DynamicBatcher[str, Probabilities] = field(init=False)
    # The CPUs this process may use, read once (each batch divides them).
    cores: int = field(default_factory=lambda: len(os.sched_getaffinity(0)))

    def __post_init__(self) -> None:
        instances = self.settings.batching.instances
        self.slots = [
            ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"model-{index}")
            for index in range(instances)
        ]
        self._busy = [False] * instances
        self.batcher = DynamicBatcher(
            self.settings.batching, self._run_batch, on_batch=self.metrics.record_batch
        )
        self.metrics.record_settings(self.settings.batching)
        self.metrics.queued_requests.set_function(lambda: self.batcher.queued_requests)

    @property
    def ready(self) -> bool:
        return self.loaded is not None

    async def _run_batch(self, texts: list[str]) -> Sequence[Probabilities]:
        loaded = self.loaded
        if loaded is None:
            raise RuntimeError("no model is loaded")
        # The batcher runs at most `instances` batches at once, so a slot is always free.
        slot = self._busy.index(False)
        self._busy[slot] = True
        try:
            probabilities = await asyncio.get_running_loop().run_in_executor(
                self.slots[slot], loaded.predict, texts, self._threads_for_batch()
            )
        finally:
            self._busy[slot] = False
        return list(probabilities)  # one row per text: the batcher hands each request its own

    def _threads_for_batch(self) -> int:
        """A batch alone uses every core (a lone request then runs as fast as bare torch);
        batches that run together share them."""
        return self.threads_for(self.batcher.running_batches)

    def threads_for(self, batches: int) -> int:
        """Intra-op threads of each of `batches` batches running at once; a thread count
        set in the environment (WARMSTART_TORCH_THREADS) is kept as it is."""
        if self.settings.torch_threads:
            return self.settings.torch_threads
        return max(1, self.cores // min(max(1, batches), self.settings.batching.instances))

    def shutdown_executors(self) -> None:
        for slot in self.slots:
            slot.shutdown(wait=False, cancel_futures=True)
        self.codec_executor.shutdown(wait=False, cancel_futures=True)


STATE_KEY = web.AppKey("state", ServerState)


async def load_in_background(state: ServerState) -> None:
    """Load once; retry only while storage is unreachable, never after a refusal."""
    loop = asyncio.get_running_loop()
    settings = state.settings
    load = partial(
        load_version,
        settings.uri,
        settings.workdir,
        state.store,
        expected_digest=settings.expected_digest,
        device=settings.device,
        max_length=settings.max_length,
        threads=state.threads_for(settings.batching.instances),
    )
    delay = settings.retry_initial_s
    while True:
        try:
            loaded = await loop.run_in_executor(state.slots[0], load)
        except storage.StorageUnavailableError as exc:
            state.metrics.load_failures.inc()
            state.failure = f"storage unavailable, retrying in {delay:.0f}s: {exc}"
            log.warning("could not fetch version %s: %s", settings.uri, state.failure)
            await asyncio.sleep(delay)
            delay = min(settings.retry_max_s, delay * 2)
            continue
        except (TrainerError, storage.StorageError, record.RecordError, OSError, ValueError) as exc:
            state.metrics.load_failures.inc()
            state.failure = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            log.error("refused to serve %s: %s; staying not ready", settings.uri, state.failure)
            return
        except Exception as exc:  # a model that transformers cannot build, a torch error, ...
            state.metrics.load_failures.inc()
            first_line = str(exc).splitlines()[0] if str(exc) else ""
            state.failure = f"loading failed: {type(exc).__name__}: {first_line}"
            log.exception("refused to serve %s; staying not ready", settings.uri)
            return
        state.loaded = loaded
        state.failure = None
        state.metrics.ready.set(1)
        state.metrics.torch_threads.set(torch.get_num_threads())
        state.metrics.model_info.labels(
            settings.model_name, loaded.version, loaded.manifest_digest
        ).set(1)
        log.info(
            "loaded version %s (manifest %s) from %s on %s; ready (batches of at most %d "
            "texts, queue delay %g ms, queue size %d, %d instances of %d torch threads)",
            loaded.version,
            loaded.manifest_digest,
            settings.uri,
            loaded.device,
            settings.batching.max_batch_size,
            settings.batching.max_queue_delay_ms,
            settings.batching.max_queue_size,
            settings.batching.instances,
            torch.get_num_threads(),
        )
        return
