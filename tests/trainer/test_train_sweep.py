"""A learning-rate sweep: every rate trains with the same budget, the best by validation loss
is kept, every curve is recorded; and a cold start's evaluation interval."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from tests.trainer.conftest import Lineage
from warmstart import record
from warmstart.trainspec import parse_spec
from warmstart_trainer.train import run_train

CPU = torch.device("cpu")


def test_sweep_keeps_the_rate_with_the_best_validation_loss(
    lineage: Lineage, tmp_path: Path
) -> None:
    # The toy task barely moves validation loss; whichever rate is lower wins, and only
    # by validation loss (the holdout set is never consulted).
    doc = lineage.spec().training(learningRates=[1e-9, 1e-3], maxEpochs=2).obj()
    del doc["training"]["learningRate"]
    spec = parse_spec(doc)
    outcome = run_train(spec, lineage.store, tmp_path / "work", device=CPU)
    manifest = outcome.manifest

    curves = manifest.evaluation.curves
    assert [c.learning_rate for c in curves] == [1e-9, 1e-3]
    losses = [c.best_validation_loss for c in curves]
    assert None not in losses
    best = min(range(2), key=lambda i: losses[i] or 0.0)
    assert [c.chosen for c in curves] == [i == best for i in range(2)]
    chosen_rate = curves[best].learning_rate
    # The same step budget for each, and a point per evaluation (once per warm epoch).
    assert curves[0].steps == curves[1].steps
    assert [len(c.points) for c in curves] == [2, 2]
    assert all(p.train_seconds is not None for c in curves for p in c.points)

    assert manifest.training["learningRate"] == chosen_rate
    assert manifest.training["bestValidationLoss"] == losses[best]
    assert manifest.training["sweepSeconds"] >= manifest.training["trainSeconds"]
    assert manifest.hyperparameters["learningRate"] == chosen_rate
    assert manifest.hyperparameters["learningRates"] == [1e-9, 1e-3]
    # The sweep is not resumable run by run, so it writes no progress checkpoints.
    assert manifest.hyperparameters["checkpointEverySteps"] == 0
    # The manifest round-trips through its typed sections.
    assert record.parse_manifest(manifest.to_bytes()).evaluation == manifest.evaluation


def test_single_run_records_its_curve_and_keeps_checkpoints(
    lineage: Lineage, tmp_path: Path
) -> None:
    spec = lineage.spec().training(maxEpochs=2, checkpointEverySteps=1).spec()
    manifest = run_train(spec, lineage.store, tmp_path / "work", device=CPU).manifest
    (curve,) = manifest.evaluation.curves
    assert curve.chosen and curve.learning_rate == 1e-3
    assert [p.step for p in curve.points] == [
        manifest.training["stepsPerEpoch"],
        2 * manifest.training["stepsPerEpoch"],
    ]
    assert manifest.hyperparameters["checkpointEverySteps"] == 1
    assert manifest.hyperparameters["evalsPerEpoch"] == 1


def test_cold_start_evaluates_twice_per_epoch(lineage: Lineage, tmp_path: Path) -> None:
    doc = lineage.spec().cold().training(maxEpochs=2).obj()
    del doc["training"]["learningRate"]
    spec = parse_spec(doc)
    outcome = run_train(spec, lineage.store, tmp_path / "work", device=CPU)
    per_epoch = outcome.manifest.training["stepsPerEpoch"]
    evaluations = [
        json.loads(line)
        for line in (tmp_path / "work" / "metrics.jsonl").read_text().splitlines()
        if '"event": "eval"' in line
    ]
    assert per_epoch >= 2
    assert len(evaluations) == 4
    assert evaluations[-1]["step"] == 2 * per_epoch
    (curve,) = outcome.manifest.evaluation.curves
    assert curve.learning_rate == 1e-4  # the cold default
