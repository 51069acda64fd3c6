"""A trainer killed with SIGKILL resumes from its newest complete progress checkpoint.

The killed trainer is a process forked from this one (torch is imported already: a fresh
``python -m warmstart_trainer`` spent seconds importing it before its first step); the
resuming run is the same command in this process.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.trainer.conftest import Lineage
from tests.trainer.support import run_cli, sentiment_rows, write_jsonl
from warmstart import record
from warmstart_trainer.cli import main
from warmstart_trainer.train import run_train


def _train_args(spec: Path) -> list[str]:
    return ["train", "--spec", str(spec), "--device", "cpu", "--progress-interval", "1"]


def _env(workdir: Path, termination: Path) -> dict[str, str]:
    return {"WARMSTART_WORKDIR": str(workdir), "TERMINATION_MESSAGE_PATH": str(termination)}


def _trainer_process(args: list[str], env: dict[str, str]) -> None:
    """The trainer's ``main`` in a forked child, output silenced; it exits with its code."""
    os.environ.update(env)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    os._exit(main(args))


@pytest.mark.slow
def test_sigkilled_trainer_resumes_from_checkpoint_and_finishes(
    lineage: Lineage, tmp_path: Path
) -> None:
    train_uri = write_jsonl(tmp_path / "train-big.jsonl", sentiment_rows(320, seed=3))
    builder = (
        lineage.spec()
        .dataset(trainURI=train_uri)
        .training(maxEpochs=4, checkpointEverySteps=10, earlyStopping={"patience": 10})
    )
    spec_path = builder.write(tmp_path / "spec.json")
    spec = builder.spec()
    output_dir = Path(spec.output.uri.removeprefix("file://"))
    progress_dir = output_dir / "_progress"

    first = multiprocessing.get_context("fork").Process(
        target=_trainer_process,
        args=(_train_args(spec_path), _env(tmp_path / "w1", tmp_path / "t1")),
    )
    first.start()
    try:
        deadline = time.monotonic() + 300
        while not list(progress_dir.glob("step-*/COMPLETE.json")):
            assert first.is_alive(), f"trainer ended before a checkpoint: {first.exitcode}"
            assert time.monotonic() < deadline, "no progress checkpoint within 300 s"
            time.sleep(0.01)
        assert first.pid is not None
        os.kill(first.pid, signal.SIGKILL)
    finally:
        first.kill()
        first.join(timeout=60)
    assert first.exitcode == -signal.SIGKILL
    assert not (output_dir / record.MANIFEST_NAME).exists()
    checkpointed = max(
        int(marker.parent.name.removeprefix("step-"))
        for marker in progress_dir.glob("step-*/COMPLETE.json")
    )
    assert checkpointed > 0
    planned = 4 * 30  # 240 training rows / batch 8 = 30 steps per epoch
    assert checkpointed < planned, "the run finished before it was killed"

    # The kill is what needs a real process; the resuming run is the same command in this
    # process (a second process would spend most of its time importing torch).
    code, stderr = run_cli(_train_args(spec_path), _env(tmp_path / "w2", tmp_path / "t2"))
    assert code == 0, stderr
    assert "resumed training at step" in stderr

    events = [
        json.loads(line) for line in (tmp_path / "w2" / "metrics.jsonl").read_text().splitlines()
    ]
    resumes = [e for e in events if e["event"] == "resume"]
    starts = [e for e in events if e["event"] == "start"]
    assert len(resumes) == 1 and resumes[0]["fromStep"] >= checkpointed > 0
    assert starts[0]["startStep"] == 0  # the first run's log came back with the checkpoint
    assert starts[-1]["startStep"] == resumes[0]["fromStep"]

    summary = json.loads((tmp_path / "t2").read_text())
    assert summary["result"] == "Succeeded"
    manifest_bytes = (output_dir / record.MANIFEST_NAME).read_bytes()
    assert summary["manifestDigest"] == record.manifest_digest(manifest_bytes)
    manifest = record.parse_manifest(manifest_bytes)
    assert manifest.training["resumedFromStep"] == resumes[0]["fromStep"]
    record.verify_local_files(manifest, output_dir, where="resumed version")
    assert not progress_dir.exists() or not any(progress_dir.iterdir())

    # Resuming is exact: an uninterrupted run of the same spec ends with the same weights.
    reference_spec = builder.training().spec()
    lineage.store.delete_prefix(spec.output.uri)
    run_train(reference_spec, lineage.store, tmp_path / "w3", device=torch.device("cpu"))
    resumed = load_file(str(tmp_path / "w2" / "output" / "model.safetensors"))
    uninterrupted = load_file(str(tmp_path / "w3" / "output" / "model.safetensors"))
    for key, tensor in uninterrupted.items():
        assert torch.allclose(resumed[key], tensor, atol=1e-6), key
