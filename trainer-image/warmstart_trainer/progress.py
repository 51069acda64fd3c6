"""Progress checkpoints: everything a preempted run needs to continue where it stopped.

One checkpoint is a folder ``<output>/_progress/step-<N>/``:

    model.safetensors      current weights
    best.safetensors       weights at the best validation loss so far (the eventual result)
    optimizer.safetensors  optimizer state tensors, flattened to ``state.<param>.<name>``
    rng.safetensors        torch CPU (and CUDA) generator states
    metrics.jsonl          the metrics log so far
    state.json             step, epoch, position in epoch, best loss, early-stopping counters,
                           schedule, optimizer hyperparameters, non-tensor optimizer state
    COMPLETE.json          written last: the sha256 of every file above

No pickle anywhere: tensors go to safetensors, everything else to JSON. A folder without
``COMPLETE.json``, or whose files do not match it, is ignored; a restarted run takes the
newest complete one (``progress_store``). This module is the format alone, with no storage
dependency, so the training loop can run where boto3 is not installed.
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

PROGRESS_DIR = "_progress"
MARKER = "COMPLETE.json"
STATE = "state.json"
WEIGHTS = "model.safetensors"
BEST_WEIGHTS = "best.safetensors"
OPTIMIZER = "optimizer.safetensors"
RNG = "rng.safetensors"
METRICS = "metrics.jsonl"
FORMAT = "warmstart.dev/progress/v1"


@dataclass
class TrainingProgress:
    """Counters of a training run; JSON-serialisable as is."""

    step: int = 0
    epoch: int = 0  # the epoch in progress, 0-based
    batch_in_epoch: int = 0  # batches of that epoch already trained on
    best_loss: float | None = None
    best_step: int | None = None
    best_epoch: int | None = None  # 1-based, as people count epochs
    evals_since_best: int = 0
    stopped_early: bool = False
    train_seconds: float = 0.0
    examples_seen: int = 0
    evaluations: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Checkpoint:
    progress: TrainingProgress
    weights: dict[str, torch.Tensor]
    best_weights: dict[str, torch.Tensor] | None
    optimizer_state: dict[str, Any]
    schedule: dict[str, Any]
    rng: dict[str, torch.Tensor]
    spec_fingerprint: str
    metrics_log: Path | None = None  # the metrics log up to this checkpoint, when restored


# --- optimizer state <-> safetensors + JSON ---------------------------------------------------


def flatten_optimizer_state(
    state_dict: dict[str, Any],
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split ``optimizer.state_dict()`` into tensors (for safetensors) and JSON metadata."""
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for param_id, param_state in state_dict["state"].items():
        for name, value in param_state.items():
            if isinstance(value, torch.Tensor):
                # A copy: the optimizer updates its state in place, and a checkpoint must
                # not change after it was taken.
                copied = value.detach().to("cpu", copy=True)
                tensors[f"state.{param_id}.{name}"] = copied.contiguous()
            else:
                scalars.setdefault(str(param_id), {})[name] = value
    groups = json.loads(json.dumps(state_dict["param_groups"]))  # tuples -> lists, checks JSON
    return tensors, {"scalars": scalars, "param_groups": groups}


def unflatten_optimizer_state(
    tensors: dict[str, torch.Tensor], meta: dict[str, Any]
) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for key, tensor in tensors.items():
        _, param_id, name = key.split(".", 2)
        state.setdefault(int(param_id), {})[name] = tensor
    for param_id, values in meta["scalars"].items():
        state.setdefault(int(param_id), {}).update(values)
    groups = meta["param_groups"]
    for group in groups:
        if isinstance(group.get("betas"), list):
            group["betas"] = tuple(group["betas"])
    return {"state": state, "param_groups": groups}


# --- RNG ---------------------------------------------------------------------------------------


def capture_rng() -> dict[str, torch.Tensor]:
    states = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        for index, state in enumerate(torch.cuda.get_rng_state_all()):
            states[f"cuda.{index}"] = state
    return states


def restore_rng(states: dict[str, torch.Tensor]) -> None:
    torch.set_rng_state(states["cpu"])
    cuda = [states[key] for key in sorted(k for k in states if k.startswith("cuda."))]
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


# --- local folders -----------------------------------------------------------------------------


def write_checkpoint(checkpoint: Checkpoint, directory: Path, metrics_log: Path | None) -> None:
    """Write every checkpoint file except the marker into ``directory``."""
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    save_file(checkpoint.weights, str(directory / WEIGHTS))
    if checkpoint.best_weights is not None:
        save_file(checkpoint.best_weights, str(directory / BEST_WEIGHTS))
    optimizer_tensors, optimizer_meta = flatten_optimizer_state(checkpoint.optimizer_state)
    save_file(optimizer_tensors, str(directory / OPTIMIZER))
    save_file(checkpoint.rng, str(directory / RNG))
    if metrics_log is not None and metrics_log.exists():
        shutil.copyfile(metrics_log, directory / METRICS)
    state = {
        "format": FORMAT,
        "specFingerprint": checkpoint.spec_fingerprint,
        "progress": _finite(asdict(checkpoint.progress)),
        "schedule": checkpoint.schedule,
        "optimizer": optimizer_meta,
    }
    (directory / STATE).write_text(json.dumps(state, indent=2, sort_keys=True), encoding="utf-8")


def read_checkpoint(directory: Path) -> Checkpoint:
    state = json.loads((directory / STATE).read_text(encoding="utf-8"))
    if state.get("format") != FORMAT:
        raise ValueError(f"{directory / STATE}: unknown format {state.get('format')!r}")
    best_path = directory / BEST_WEIGHTS
    return Checkpoint(
        progress=TrainingProgress(**state["progress"]),
        weights=load_file(str(directory / WEIGHTS)),
        best_weights=load_file(str(best_path)) if best_path.exists() else None,
        optimizer_state=unflatten_optimizer_state(
            load_file(str(directory / OPTIMIZER)), state["optimizer"]
        ),
        schedule=state["schedule"],
        rng=load_file(str(directory / RNG)),
        spec_fingerprint=state["specFingerprint"],
        metrics_log=directory / METRICS if (directory / METRICS).exists() else None,
    )


def _finite(value: Any) -> Any:
    """JSON has no Infinity/NaN; a loss that is not finite is stored as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value
