"""Passes of similar length inside a batch: less padding, the same answers in the same order."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.server.support import MODEL
from tests.trainer.support import LABELS, make_tiny_base
from warmstart.storage import S3Settings, Storage
from warmstart_trainer import serving_model
from warmstart_trainer.modeling import load_classifier, load_tokenizer
from warmstart_trainer.serving_model import LoadedModel, length_groups
from warmstart_trainer.serving_settings import ServerSettings
from warmstart_trainer.serving_state import ServerState


def padded_cost(lengths: list[int], groups: list[list[int]], overhead: int) -> int:
    return sum(overhead + len(group) * max(lengths[i] for i in group) for group in groups)


def test_one_long_text_runs_apart_from_the_short_ones() -> None:
    lengths = [12, 30, 9, 268, 25, 14, 31, 18]
    groups = length_groups(lengths, overhead=64)
    assert groups == [[2, 0, 5, 7, 4, 1, 6], [3]]
    assert padded_cost(lengths, groups, 64) < padded_cost(lengths, [list(range(8))], 64)


@pytest.mark.parametrize(
    ("lengths", "overhead", "expected"),
    [
        ([], 64, []),
        ([7], 64, [[0]]),
        ([20, 20, 20], 0, [[0, 1, 2]]),  # nothing to gain from splitting equal lengths
        ([10, 11, 12], 1000, [[0, 1, 2]]),  # a pass costs more than all the padding
        ([50, 10], 0, [[1], [0]]),  # free passes: every length on its own
    ],
)
def test_groups(lengths: list[int], overhead: int, expected: list[list[int]]) -> None:
    assert length_groups(lengths, overhead) == expected


def test_every_index_once_and_no_split_costs_less() -> None:
    rng = np.random.default_rng(5)
    for _ in range(30):
        lengths = [int(x) for x in rng.integers(3, 300, size=int(rng.integers(1, 12)))]
        groups = length_groups(lengths, overhead=48)
        assert sorted(i for group in groups for i in group) == list(range(len(lengths)))
        cost = padded_cost(lengths, groups, 48)
        # Against every split of the sorted order into consecutive runs (2^(n-1) of them).
        order = sorted(range(len(lengths)), key=lengths.__getitem__)
        for mask in range(2 ** (len(lengths) - 1)):
            runs, start = [], 0
            for cut in range(1, len(lengths)):
                if mask >> (cut - 1) & 1:
                    runs.append(order[start:cut])
                    start = cut
            runs.append(order[start:])
            assert cost <= padded_cost(lengths, runs, 48)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> LoadedModel:
    directory = make_tiny_base(tmp_path_factory.mktemp("tiny") / "checkpoint", seed=3,
                               labels=LABELS)
    model = load_classifier(directory, LABELS)
    model.train(False)
    return LoadedModel("v1", "sha256:x", LABELS, model, load_tokenizer(directory),
                       torch.device("cpu"), max_length=64)


def test_split_passes_answer_as_one_text_at_a_time(
    tiny: LoadedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    texts = [" ".join(["good"] + ["movie"] * n) for n in (30, 0, 12, 3, 45, 1)]
    alone = np.concatenate([tiny.predict([text]) for text in texts])
    for overhead in (0, 5, 10_000):  # every text its own pass, some passes, one pass
        monkeypatch.setattr(serving_model, "PASS_OVERHEAD_TOKENS", overhead)
        together = tiny.predict(texts)
        assert together.shape == (len(texts), len(LABELS))
        assert np.allclose(together, alone, atol=1e-5)


def test_passes_run_in_the_precision_the_trainer_evaluated_in(
    tiny: LoadedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a bf16 CUDA device the server autocasts as evaluation does; stood in for here by
    CPU bf16 autocast: the answers move (the path is taken) but keep their labels."""
    texts = [" ".join(["good"] + ["movie"] * n) for n in (30, 0, 12, 3, 45, 1)]
    full = tiny.predict(texts)
    monkeypatch.setattr(serving_model, "autocast_context",
                        lambda device: torch.autocast(device.type, dtype=torch.bfloat16))
    half = tiny.predict(texts)
    assert not np.array_equal(half, full)
    assert np.abs(half - full).max() < 0.08  # benchmarks/gpu_check.py's tolerance
    assert (half.argmax(axis=1) == full.argmax(axis=1)).all()


def test_torch_threads_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    def settings() -> ServerSettings:
        return ServerSettings(uri="file:///x/", model_name=MODEL, workdir=Path("/tmp"))

    monkeypatch.setenv("WARMSTART_TORCH_THREADS", "3")
    assert settings().torch_threads == 3
    for bad in ("-1", "two"):
        monkeypatch.setenv("WARMSTART_TORCH_THREADS", bad)
        with pytest.raises(ValueError, match="WARMSTART_TORCH_THREADS"):
            settings()


def test_a_lone_batch_gets_every_core_and_batches_together_share_them(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WARMSTART_TORCH_THREADS", raising=False)
    monkeypatch.setenv("WARMSTART_MODEL_INSTANCES", "2")
    cores = len(os.sched_getaffinity(0))
    settings = ServerSettings(uri="file:///x/", model_name=MODEL, workdir=Path("/tmp"))
    store = Storage(S3Settings.from_env({"AWS_ACCESS_KEY_ID": "k",
                                         "AWS_SECRET_ACCESS_KEY": "s"}))
    state = ServerState(settings, store)
    running = {"count": 1}
    monkeypatch.setattr(type(state.batcher), "running_batches",
                        property(lambda _: running["count"]))
    assert state._threads_for_batch() == cores
    running["count"] = 2
    assert state._threads_for_batch() == max(1, cores // 2)
    monkeypatch.setenv("WARMSTART_TORCH_THREADS", "3")
    fixed = ServerState(ServerSettings(uri="file:///x/", model_name=MODEL,
                                       workdir=Path("/tmp")), store)
    assert fixed._threads_for_batch() == 3
    state.shutdown_executors()
    fixed.shutdown_executors()
