"""Progress checkpoints: exact optimizer round trip, completion markers, newest-complete wins."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from warmstart.storage import Storage
from warmstart_trainer.modeling import snapshot_weights
from warmstart_trainer.progress import (
    MARKER,
    Checkpoint,
    TrainingProgress,
    capture_rng,
    flatten_optimizer_state,
    read_checkpoint,
    restore_rng,
    unflatten_optimizer_state,
    write_checkpoint,
)
from warmstart_trainer.progress_store import ProgressStore
from warmstart_trainer.train_loop import build_optimizer


def _model(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.LayerNorm(8), torch.nn.Linear(8, 2))


def _step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randn(5, 4, generator=generator)
    loss = model(inputs).pow(2).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def test_optimizer_state_survives_safetensors_and_json_exactly(tmp_path: Path) -> None:
    model = _model(0)
    optimizer = build_optimizer(model, 1e-2, 0.01)
    for seed in range(3):
        _step(model, optimizer, seed)
    tensors, meta = flatten_optimizer_state(optimizer.state_dict())
    assert all(isinstance(value, torch.Tensor) for value in tensors.values())
    json.dumps(meta)  # everything else is plain JSON

    clone = _model(1)
    clone.load_state_dict(model.state_dict())
    clone_optimizer = build_optimizer(clone, 1e-2, 0.01)
    clone_optimizer.load_state_dict(
        unflatten_optimizer_state(tensors, json.loads(json.dumps(meta)))
    )
    for seed in range(3, 6):
        _step(model, optimizer, seed)
        _step(clone, clone_optimizer, seed)
    for (name, a), b in zip(model.state_dict().items(), clone.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def _checkpoint(step: int, fingerprint: str = "sha256:spec") -> Checkpoint:
    model = _model(step)
    optimizer = build_optimizer(model, 1e-3, 0.0)
    _step(model, optimizer, step)
    return Checkpoint(
        progress=TrainingProgress(
            step=step, epoch=1, batch_in_epoch=2, best_loss=0.5, best_step=step, best_epoch=1
        ),
        weights=snapshot_weights(model),
        best_weights=snapshot_weights(model),
        optimizer_state=optimizer.state_dict(),
        schedule={"kind": "linear-warmup-decay", "warmup_steps": 1, "total_steps": 10},
        rng=capture_rng(),
        spec_fingerprint=fingerprint,
    )


def test_local_checkpoint_round_trip(tmp_path: Path) -> None:
    original = _checkpoint(7)
    write_checkpoint(original, tmp_path / "c", None)
    assert not any(p.suffix in (".pt", ".bin", ".pkl") for p in (tmp_path / "c").iterdir())
    restored = read_checkpoint(tmp_path / "c")
    assert restored.progress == original.progress
    assert all(torch.equal(restored.weights[k], v) for k, v in original.weights.items())
    assert restored.schedule == original.schedule
    restore_rng(restored.rng)
    first = torch.rand(3)
    restore_rng(original.rng)
    assert torch.equal(first, torch.rand(3))


@pytest.fixture
def progress_store(tmp_path: Path) -> ProgressStore:
    return ProgressStore(Storage(), (tmp_path / "bucket" / "v1").as_uri(), tmp_path / "staging")


def test_newest_complete_checkpoint_wins_and_old_ones_are_pruned(
    progress_store: ProgressStore, tmp_path: Path
) -> None:
    for step in (10, 20, 30):
        progress_store.save(_checkpoint(step), None)
    folders = sorted(p.name for p in (tmp_path / "bucket" / "v1" / "_progress").iterdir())
    assert folders == ["step-0000000020", "step-0000000030"]  # keeps two
    loaded = progress_store.load_latest("sha256:spec")
    assert loaded is not None and loaded.progress.step == 30


def test_incomplete_or_corrupt_checkpoints_are_skipped(
    progress_store: ProgressStore, tmp_path: Path
) -> None:
    progress_store.save(_checkpoint(10), None)
    progress_store.save(_checkpoint(20), None)
    newest = tmp_path / "bucket" / "v1" / "_progress" / "step-0000000020"
    weights = newest / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1] + b"\x00")
    loaded = progress_store.load_latest("sha256:spec")
    assert loaded is not None and loaded.progress.step == 10

    (newest / MARKER).unlink()  # never completed: not even looked at
    (tmp_path / "bucket" / "v1" / "_progress" / "step-0000000010" / MARKER).unlink()
    assert progress_store.load_latest("sha256:spec") is None


def test_checkpoint_of_another_spec_is_ignored(progress_store: ProgressStore) -> None:
    progress_store.save(_checkpoint(10, fingerprint="sha256:other"), None)
    assert progress_store.load_latest("sha256:spec") is None
    progress_store.clear()
    assert progress_store.load_latest("sha256:other") is None
