"""The dynamic batcher alone: batch formation, bounds, delay and splitting, in milliseconds."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import pytest

from warmstart_trainer.batcher import (
    BatchingSettings,
    BatchReport,
    DynamicBatcher,
    QueueFullError,
)

T = TypeVar("T")


class Model:
    """Doubles numbers; records each batch; ``gate`` holds a batch until the test opens it."""

    def __init__(self, *, hold: bool = False, fail_on: int | None = None) -> None:
        self.batches: list[list[int]] = []
        self.gate = asyncio.Event()
        if not hold:
            self.gate.set()
        self.fail_on = fail_on

    async def __call__(self, items: list[int]) -> Sequence[int]:
        self.batches.append(list(items))
        await self.gate.wait()
        if self.fail_on is not None and self.fail_on in items:
            raise RuntimeError(f"cannot do {self.fail_on}")
        return [2 * item for item in items]


def run(scenario: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(asyncio.wait_for(scenario(), 5))


def make(
    model: Model,
    reports: list[BatchReport] | None = None,
    *,
    max_batch_size: int,
    max_queue_delay_ms: float = 0,
    max_queue_size: int = 128,
) -> DynamicBatcher[int, int]:
    batcher: DynamicBatcher[int, int] = DynamicBatcher(
        BatchingSettings(max_batch_size, max_queue_delay_ms, max_queue_size, instances=1),
        model,
        on_batch=None if reports is None else reports.append,
    )
    batcher.start()
    return batcher


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_requests_arriving_together_run_as_one_batch() -> None:
    async def scenario() -> None:
        model, reports = Model(), list[BatchReport]()
        batcher = make(model, reports, max_batch_size=8)
        answers = await asyncio.gather(*(batcher.submit([i, 10 + i]) for i in range(3)))
        assert answers == [[0, 20], [2, 22], [4, 24]]
        assert model.batches == [[0, 10, 1, 11, 2, 12]]
        assert [r.size for r in reports] == [6] and len(reports[0].queue_seconds) == 3
        await batcher.close()

    run(scenario)


def test_requests_queued_behind_a_running_batch_form_the_next_one() -> None:
    async def scenario() -> None:
        model = Model(hold=True)
        batcher = make(model, max_batch_size=8)
        first = asyncio.create_task(batcher.submit([1]))
        await settle()
        assert model.batches == [[1]]  # idle model: a lone request runs at once
        rest = [asyncio.create_task(batcher.submit([n])) for n in (2, 3, 4)]
        await settle()
        assert batcher.queued_requests == 3
        model.gate.set()
        assert await first == [2]
        assert [await task for task in rest] == [[4], [6], [8]]
        assert model.batches == [[1], [2, 3, 4]]
        await batcher.close()

    run(scenario)


def test_a_batch_never_exceeds_the_max_and_keeps_arrival_order() -> None:
    async def scenario() -> None:
        model = Model()
        batcher = make(model, max_batch_size=4)
        answers = await asyncio.gather(
            batcher.submit([1, 2, 3]), batcher.submit([4, 5]), batcher.submit([6])
        )
        assert list(answers) == [[2, 4, 6], [8, 10], [12]]
        # [4, 5] does not fit beside [1, 2, 3]: it waits for the next batch, [6] with it.
        assert model.batches == [[1, 2, 3], [4, 5, 6]]
        assert all(len(batch) <= 4 for batch in model.batches)
        await batcher.close()

    run(scenario)


def test_a_request_larger_than_a_batch_is_split_and_reassembled() -> None:
    async def scenario() -> None:
        model, reports = Model(), list[BatchReport]()
        batcher = make(model, reports, max_batch_size=4)
        big, small = await asyncio.gather(batcher.submit(list(range(10))), batcher.submit([99]))
        assert big == [2 * i for i in range(10)]
        assert small == [198]
        assert model.batches == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 99]]
        assert [r.size for r in reports] == [4, 4, 3]
        await batcher.close()

    run(scenario)


def test_a_full_queue_refuses_at_once_with_a_reason() -> None:
    async def scenario() -> None:
        model = Model(hold=True)
        batcher = make(model, max_batch_size=1, max_queue_size=2)
        running = asyncio.create_task(batcher.submit([1]))
        await settle()
        waiting = [asyncio.create_task(batcher.submit([n])) for n in (2, 3)]
        await settle()
        with pytest.raises(QueueFullError, match="WARMSTART_MAX_QUEUE_SIZE=2"):
            await batcher.submit([4])
        model.gate.set()
        assert [await t for t in (running, *waiting)] == [[2], [4], [6]]
        assert await batcher.submit([5]) == [10]  # room again once the queue drained
        await batcher.close()

    run(scenario)


def test_a_lone_request_waits_at_most_the_queue_delay() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        model = Model()
        batcher = make(model, max_batch_size=4, max_queue_delay_ms=30)
        started = loop.time()
        first = asyncio.create_task(batcher.submit([1]))
        await asyncio.sleep(0.01)
        assert model.batches == []  # still waiting for company
        second = asyncio.create_task(batcher.submit([2]))
        assert await first == [2] and await second == [4]
        waited = loop.time() - started
        assert 0.025 <= waited < 0.5, waited
        assert model.batches == [[1, 2]]
        await batcher.close()

    run(scenario)


def test_a_full_batch_does_not_wait_for_the_delay() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        model = Model()
        batcher = make(model, max_batch_size=2, max_queue_delay_ms=5_000)
        started = loop.time()
        assert list(await asyncio.gather(batcher.submit([1]), batcher.submit([2]))) == [[2], [4]]
        assert loop.time() - started < 1
        await batcher.close()

    run(scenario)


def test_a_failed_batch_fails_its_requests_only() -> None:
    async def scenario() -> None:
        model = Model(fail_on=3)
        batcher = make(model, max_batch_size=2)
        results = await asyncio.gather(
            batcher.submit([3]), batcher.submit([4]), batcher.submit([5]), return_exceptions=True
        )
        assert isinstance(results[0], RuntimeError) and isinstance(results[1], RuntimeError)
        assert results[2] == [10]  # the next batch ran as usual
        await batcher.close()

    run(scenario)


def test_a_cancelled_request_is_not_run() -> None:
    async def scenario() -> None:
        model = Model(hold=True)
        batcher = make(model, max_batch_size=4)
        running = asyncio.create_task(batcher.submit([1]))
        await settle()
        gone = asyncio.create_task(batcher.submit([2]))
        kept = asyncio.create_task(batcher.submit([3]))
        await settle()
        gone.cancel()
        model.gate.set()
        assert await running == [2] and await kept == [6]
        assert model.batches == [[1], [3]]
        assert batcher.queued_requests == 0
        await batcher.close()

    run(scenario)


def test_close_cancels_what_still_waits() -> None:
    async def scenario() -> None:
        model = Model(hold=True)
        batcher = make(model, max_batch_size=1)
        tasks = [asyncio.create_task(batcher.submit([n])) for n in (1, 2)]
        await settle()
        await batcher.close()
        for task in tasks:
            with pytest.raises(asyncio.CancelledError):
                await task
        with pytest.raises(RuntimeError, match="not running"):
            await batcher.submit([3])

    run(scenario)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, BatchingSettings(16, 0.0, 128, 2)),
        (
            {
                "WARMSTART_MAX_BATCH_SIZE": "16",
                "WARMSTART_MAX_QUEUE_DELAY_MS": "2.5",
                "WARMSTART_MAX_QUEUE_SIZE": "10",
            },
            BatchingSettings(16, 2.5, 10),
        ),
        ({"WARMSTART_MAX_BATCH_SIZE": " "}, BatchingSettings()),
    ],
)
def test_settings_from_env(env: dict[str, str], expected: BatchingSettings) -> None:
    assert BatchingSettings.from_env(env) == expected


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"WARMSTART_MAX_BATCH_SIZE": "0"}, "WARMSTART_MAX_BATCH_SIZE must be at least 1"),
        ({"WARMSTART_MAX_BATCH_SIZE": "big"}, "'big' is not an integer"),
        ({"WARMSTART_MAX_QUEUE_DELAY_MS": "-1"}, "WARMSTART_MAX_QUEUE_DELAY_MS must be between"),
        ({"WARMSTART_MAX_QUEUE_SIZE": "0"}, "WARMSTART_MAX_QUEUE_SIZE must be at least 1"),
    ],
)
def test_invalid_settings_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BatchingSettings.from_env(env)
