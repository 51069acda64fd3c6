"""Dynamic batching: requests that arrive together run as one forward pass.

The model of Triton's dynamic batcher. Whenever the model is free, the batcher takes what
is queued, oldest first, up to ``max_batch_size`` items (texts); with a ``max_queue_delay``
above zero it first waits, at most until the oldest queued request has waited that long,
for the batch to fill. Requests that arrive while a batch runs queue up and form the next
one, so concurrent clients get batch throughput without any delay at all, and a lone
client pays nothing for batching. A request larger than ``max_batch_size`` is split into
chunks that run in successive batches; its answer is put back together in order. The queue
is bounded (``max_queue_size`` requests waiting): past that, ``submit`` refuses at once
rather than letting latency grow without bound. With ``instances`` above one (Triton's
instance group count), that many batches run at once; a batch then takes at most its share
of the texts in flight, so that concurrent clients settle into equal batches, and the queue
delay is waited only while another batch runs (for the clients it answered to send again):
on an idle server a lone request runs at once.

Pure asyncio, no torch: the caller hands in the coroutine that runs one batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Generic, TypeVar

In = TypeVar("In")
Out = TypeVar("Out")

MAX_BATCH_SIZE_ENV = "WARMSTART_MAX_BATCH_SIZE"
MAX_QUEUE_DELAY_ENV = "WARMSTART_MAX_QUEUE_DELAY_MS"
MAX_QUEUE_SIZE_ENV = "WARMSTART_MAX_QUEUE_SIZE"
INSTANCES_ENV = "WARMSTART_MODEL_INSTANCES"


@dataclass(frozen=True)
class BatchingSettings:
    # Texts per forward pass. With length grouping, 16 short texts on one core already get
    # most of the throughput of 32 (benchmarks/server_bench.py), at half the last text's wait.
    max_batch_size: int = 16
    # Triton's default is 0 too: batches form from what queued while the model was busy.
    max_queue_delay_ms: float = 0.0
    max_queue_size: int = 128  # requests waiting (not running); more are answered 503
    # Batches that run at once, each on its share of the cores. On 2 cores, two passes of one
    # thread each classified 16 concurrent clients' texts 1.4-2x faster than one pass of two
    # threads: small matrices scale poorly across threads, and one pass's Python and
    # tokenising overlap the other's arithmetic.
    instances: int = 2

    def __post_init__(self) -> None:
        if self.max_batch_size < 1:
            raise ValueError(f"{MAX_BATCH_SIZE_ENV} must be at least 1, got {self.max_batch_size}")
        if not 0 <= self.max_queue_delay_ms <= 10_000:
            raise ValueError(
                f"{MAX_QUEUE_DELAY_ENV} must be between 0 and 10000, got {self.max_queue_delay_ms}"
            )
        if self.max_queue_size < 1:
            raise ValueError(f"{MAX_QUEUE_SIZE_ENV} must be at least 1, got {self.max_queue_size}")
        if self.instances < 1:
            raise ValueError(f"{INSTANCES_ENV} must be at least 1, got {self.instances}")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> BatchingSettings:
        """The defaults, overridden by ``WARMSTART_MAX_*`` variables that are set."""
        env = os.environ if env is None else env
        defaults = cls()
        return cls(
            max_batch_size=int(env_number(env, MAX_BATCH_SIZE_ENV, defaults.max_batch_size, int)),
            max_queue_delay_ms=env_number(env, MAX_QUEUE_DELAY_ENV, defaults.max_queue_delay_ms,
                                          float),
            max_queue_size=int(env_number(env, MAX_QUEUE_SIZE_ENV, defaults.max_queue_size, int)),
            instances=int(env_number(env, INSTANCES_ENV, defaults.instances, int)),
        )


def env_number(env: Mapping[str, str], name: str, default: float,
               kind: type[int] | type[float]) -> float:
    """A number from the variable `name`, `default` when unset; a clear error otherwise."""
    text = env.get(name, "").strip()
    if not text:
        return default
    try:
        return kind(text)
    except ValueError:
        what = "an integer" if kind is int else "a number"
        raise ValueError(f"{name}={text!r} is not {what}") from None


class QueueFullError(Exception):
    """The queue holds ``max_queue_size`` requests: the caller should answer 503."""


@dataclass(frozen=True)
class BatchReport:
    """What one batch was, for metrics: its size and how long each chunk in it queued."""

    size: int
    queue_seconds: tuple[float, ...]
    run_seconds: float


@dataclass(eq=False)
class _Request(Generic[Out]):
    future: asyncio.Future[list[Out]]
    results: list[Sequence[Out] | None]
    enqueued: float
    chunks_left_in_queue: int


@dataclass(eq=False)
class _Chunk(Generic[In, Out]):
    request: _Request[Out]
    index: int  # position among the request's chunks
    items: Sequence[In]


@dataclass(eq=False)
class DynamicBatcher(Generic[In, Out]):
    """Runs ``run(items)`` on batches of submitted items, one batch at a time.

    ``run`` must return one result per item, in order. ``on_batch`` (optional) is told about
    every batch after it ran. Call ``start`` inside the running event loop, ``close`` at the
    end; requests still queued then fail with ``asyncio.CancelledError``.
    """

    settings: BatchingSettings
    run: Callable[[list[In]], Awaitable[Sequence[Out]]]
    on_batch: Callable[[BatchReport], None] | None = None
    _queue: deque[_Chunk[In, Out]] = field(default_factory=deque, init=False)
    _queued_requests: int = field(default=0, init=False)
    _queued_items: int = field(default=0, init=False)
    _running_items: int = field(default=0, init=False)
    _running: set[asyncio.Task[None]] = field(default_factory=set, init=False)
    # Set when a request arrives or a batch ends: the loop then looks again.
    _arrived: asyncio.Event | None = field(default=None, init=False)
    _task: asyncio.Task[None] | None = field(default=None, init=False)

    @property
    def queued_requests(self) -> int:
        return self._queued_requests

    @property
    def running_batches(self) -> int:
        """Batches being computed now (a batch's own run counts itself)."""
        return len(self._running)

    def start(self) -> None:
        if self._task is None:
            self._arrived = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="batcher")

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for running in list(self._running):
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running
        while self._queue:
            self._queue.popleft().request.future.cancel()
        self._queued_requests = self._queued_items = 0

    async def submit(self, items: Sequence[In]) -> list[Out]:
        """The results for ``items``, once the batches holding them have run."""
        if self._task is None or self._arrived is None:
            raise RuntimeError("the batcher is not running")
        if not items:
            return []
        if self._queued_requests >= self.settings.max_queue_size:
            raise QueueFullError(
                f"the inference queue is full ({self._queued_requests} requests waiting, "
                f"{MAX_QUEUE_SIZE_ENV}={self.settings.max_queue_size}); retry later"
            )
        loop = asyncio.get_running_loop()
        size = self.settings.max_batch_size
        parts = [items[start : start + size] for start in range(0, len(items), size)]
        request: _Request[Out] = _Request(
            future=loop.create_future(),
            results=[None] * len(parts),
            enqueued=loop.time(),
            chunks_left_in_queue=len(parts),
        )
        self._queue.extend(_Chunk(request, index, part) for index, part in enumerate(parts))
        self._queued_requests += 1
        self._queued_items += len(items)
        self._arrived.set()
        return await request.future

    async def _loop(self) -> None:
        assert self._arrived is not None
        loop = asyncio.get_running_loop()
        delay = self.settings.max_queue_delay_ms / 1000
        while True:
            while not self._queue or len(self._running) >= self.settings.instances:
                self._arrived.clear()
                await self._arrived.wait()
            # Wait for a fuller batch, but never past the oldest request's deadline.
            while delay and self._queued_items < self._worth_waiting_for():
                remaining = self._queue[0].request.enqueued + delay - loop.time()
                if remaining <= 0:
                    break
                self._arrived.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._arrived.wait(), remaining)
            batch = self._take()
            if batch:
                size = sum(len(chunk.items) for chunk in batch)
                self._running_items += size
                task = loop.create_task(self._run(batch, loop))
                self._running.add(task)
                task.add_done_callback(partial(self._ended, size))

    def _ended(self, size: int, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._running_items -= size
        if self._arrived is not None:
            self._arrived.set()

    def _share(self) -> int:
        """One instance's share of the texts queued and running, rounded up."""
        return -(-(self._queued_items + self._running_items) // self.settings.instances)

    def _worth_waiting_for(self) -> int:
        """How many queued texts a batch waits for (at most the queue delay) before it runs."""
        if self.settings.instances == 1:
            return self.settings.max_batch_size
        if not self._running:  # an idle server: a lone request runs at once
            return 0
        return min(self.settings.max_batch_size, self._share())

    def _take(self) -> list[_Chunk[In, Out]]:
        """Whole chunks, oldest first, while they fit in one batch (at least one chunk)."""
        limit = self.settings.max_batch_size
        if self.settings.instances > 1:  # this batch's share of all the texts in flight
            limit = min(limit, self._share())
        batch: list[_Chunk[In, Out]] = []
        total = 0
        while self._queue and (not total or total + len(self._queue[0].items) <= limit):
            chunk = self._queue.popleft()
            self._queued_items -= len(chunk.items)
            chunk.request.chunks_left_in_queue -= 1
            if chunk.request.chunks_left_in_queue == 0:
                self._queued_requests -= 1
            if chunk.request.future.done():  # its client went away, or a chunk failed
                continue
            batch.append(chunk)
            total += len(chunk.items)
        return batch

    async def _run(self, batch: list[_Chunk[In, Out]], loop: asyncio.AbstractEventLoop) -> None:
        items = [item for chunk in batch for item in chunk.items]
        started = loop.time()
        try:
            results = await self.run(items)
            if len(results) != len(items):
                raise RuntimeError(f"the model returned {len(results)} results for {len(items)}")
        except asyncio.CancelledError:
            for chunk in batch:
                chunk.request.future.cancel()
            raise
        except Exception as exc:
            for chunk in batch:
                if not chunk.request.future.done():
                    chunk.request.future.set_exception(exc)
            return
        finished = loop.time()
        offset = 0
        for chunk in batch:
            request = chunk.request
            request.results[chunk.index] = results[offset : offset + len(chunk.items)]
            offset += len(chunk.items)
            if not request.future.done() and all(part is not None for part in request.results):
                request.future.set_result(
                    [r for part in request.results if part is not None for r in part]
                )
        if self.on_batch is not None:
            self.on_batch(
                BatchReport(
                    size=len(items),
                    queue_seconds=tuple(started - chunk.request.enqueued for chunk in batch),
                    run_seconds=finished - started,
                )
            )
