"""The dynamic batcher with several model instances: batches that run at once, in fair shares."""

from __future__ import annotations

import asyncio

import pytest

from tests.server.test_batcher import Model, run, settle
from warmstart_trainer.batcher import BatchingSettings, DynamicBatcher


def make(model: Model, *, max_batch_size: int, instances: int) -> DynamicBatcher[int, int]:
    settings = BatchingSettings(max_batch_size=max_batch_size, instances=instances)
    batcher: DynamicBatcher[int, int] = DynamicBatcher(settings, model)
    batcher.start()
    return batcher


def test_a_second_instance_runs_a_batch_while_the_first_is_busy() -> None:
    async def scenario() -> None:
        model = Model(hold=True)
        batcher = make(model, max_batch_size=8, instances=2)
        tasks = [asyncio.create_task(batcher.submit([n])) for n in (1,)]
        await settle()
        tasks += [asyncio.create_task(batcher.submit([n])) for n in (2,)]
        await settle()
        assert model.batches == [[1], [2]]  # both instances busy, neither waited
        tasks += [asyncio.create_task(batcher.submit([n])) for n in (3, 4)]
        await settle()
        assert model.batches == [[1], [2]] and batcher.queued_requests == 2  # no third one
        model.gate.set()
        assert [await task for task in tasks] == [[2], [4], [6], [8]]
        await batcher.close()

    run(scenario)


def test_queued_texts_are_shared_out_among_the_instances() -> None:
    async def scenario() -> None:
        model = Model(hold=True)
        batcher = make(model, max_batch_size=32, instances=2)
        tasks = [asyncio.create_task(batcher.submit([n])) for n in (1,)]
        await settle()
        tasks += [asyncio.create_task(batcher.submit([n])) for n in (2,)]
        await settle()
        tasks += [asyncio.create_task(batcher.submit([n])) for n in range(3, 9)]
        await settle()
        model.gate.set()
        await asyncio.gather(*tasks)
        # Six queued, none running once both first batches ended: three each, not six and 0.
        assert model.batches == [[1], [2], [3, 4, 5], [6, 7, 8]]
        await batcher.close()

    run(scenario)


def test_a_chunk_larger_than_the_share_still_runs_whole() -> None:
    async def scenario() -> None:
        model = Model(hold=True)
        batcher = make(model, max_batch_size=4, instances=2)
        first = [asyncio.create_task(batcher.submit([n])) for n in (1, 2)]
        await settle()
        await settle()
        big = asyncio.create_task(batcher.submit([10, 11, 12, 13, 14]))
        await settle()
        model.gate.set()
        assert await big == [20, 22, 24, 26, 28]
        await asyncio.gather(*first)
        assert model.batches[2:] == [[10, 11, 12, 13], [14]]
        await batcher.close()

    run(scenario)


def test_close_cancels_running_batches_of_every_instance() -> None:
    async def scenario() -> None:
        model = Model(hold=True)
        batcher = make(model, max_batch_size=8, instances=2)
        tasks = [asyncio.create_task(batcher.submit([n])) for n in (1, 2)]
        for _ in range(2):
            await settle()
        assert len(model.batches) == 2
        await batcher.close()
        for task in tasks:
            with pytest.raises(asyncio.CancelledError):
                await task

    run(scenario)


def test_instances_from_env() -> None:
    assert BatchingSettings.from_env({"WARMSTART_MODEL_INSTANCES": "2"}).instances == 2
    with pytest.raises(ValueError, match="WARMSTART_MODEL_INSTANCES must be at least 1"):
        BatchingSettings.from_env({"WARMSTART_MODEL_INSTANCES": "0"})


def test_with_instances_the_delay_waits_for_a_share_only_while_a_batch_runs() -> None:
    async def scenario() -> None:
        model = Model(hold=True)
        settings = BatchingSettings(max_batch_size=32, max_queue_delay_ms=2000, instances=2)
        batcher: DynamicBatcher[int, int] = DynamicBatcher(settings, model)
        batcher.start()
        first = asyncio.create_task(batcher.submit([1, 2, 3, 4]))
        await settle()
        assert model.batches == [[1, 2, 3, 4]]  # idle server: no delay at all
        rest = [asyncio.create_task(batcher.submit([n])) for n in (5, 6, 7)]
        await settle()
        assert len(model.batches) == 1  # 3 queued, below the share of 7 in flight (4): waits
        rest.append(asyncio.create_task(batcher.submit([8])))
        await settle()
        assert model.batches == [[1, 2, 3, 4], [5, 6, 7, 8]]  # its share: runs at once
        model.gate.set()
        assert await first == [2, 4, 6, 8]
        assert [await task for task in rest] == [[10], [12], [14], [16]]
        await batcher.close()

    run(scenario)
