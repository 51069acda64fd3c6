"""A trainer killed with SIGKILL resumes from its newest complete progress checkpoint."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.trainer.conftest import Lineage
from tests.trainer.support import sentiment_rows, write_jsonl
from warmstart import record
from warmstart_trainer.train import run_train


def _trainer(spec: Path, workdir: Path, termination: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "warmstart_trainer",
        "train",
        "--spec",
        str(spec),
        "--device",
        "cpu",
        "--progress-interval",
        "1",
    ]


def _env(workdir: Path, termination: Path) -> dict[str, str]:
    return {
        **os.environ,
        "WARMSTART_WORKDIR": str(workdir),
        "TERMINATION_MESSAGE_PATH": str(termination),
        "PYTHONUNBUFFERED": "1",
    }


@pytest.mark.slow
def test_sigkilled_trainer_resumes_from_checkpoint_and_finishes(
    lineage: Lineage, tmp_path: Path
) -> None:
    train_uri = write_jsonl(tmp_path / "train-big.jsonl", sentiment_rows(640, seed=3))
    builder = (
        lineage.spec()
        .dataset(trainURI=train_uri)
        .training(maxEpochs=6, checkpointEverySteps=25, earlyStopping={"patience": 10})
    )
    spec_path = builder.write(tmp_path / "spec.json")
    spec = builder.spec()
    output_dir = Path(spec.output.uri.removeprefix("file://"))
    progress_dir = output_dir / "_progress"

    first = subprocess.Popen(
        _trainer(spec_path, tmp_path / "w1", tmp_path / "t1"),
        env=_env(tmp_path / "w1", tmp_path / "t1"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 300
        while not list(progress_dir.glob("step-*/COMPLETE.json")):
            assert first.poll() is None, f"trainer ended before a checkpoint:\n{first.stderr}"
            assert time.monotonic() < deadline, "no progress checkpoint within 300 s"
            time.sleep(0.02)
        first.send_signal(signal.SIGKILL)
    finally:
        first.kill()
        first.communicate(timeout=60)
    assert first.returncode == -signal.SIGKILL
    assert not (output_dir / record.MANIFEST_NAME).exists()
    checkpointed = max(
        int(marker.parent.name.removeprefix("step-"))
        for marker in progress_dir.glob("step-*/COMPLETE.json")
    )
    assert checkpointed > 0
    planned = 6 * 60  # 480 training rows / batch 8 = 60 steps per epoch
    assert checkpointed < planned, "the run finished before it was killed"

    second = subprocess.run(
        _trainer(spec_path, tmp_path / "w2", tmp_path / "t2"),
        env=_env(tmp_path / "w2", tmp_path / "t2"),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert second.returncode == 0, second.stderr
    assert "resumed training at step" in second.stderr

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
