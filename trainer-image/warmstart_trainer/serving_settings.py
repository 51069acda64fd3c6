"""The model server's settings: its command-line values and the batching, size and thread
settings read from the environment.

Kept apart from the server (which imports torch) so that `serve` checks them first: a bad
setting exits 2 with one line naming the variable in a fraction of a second, not after
the several seconds torch takes to import.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from warmstart_trainer.batcher import BatchingSettings, env_number

MAX_REQUEST_BYTES_ENV = "WARMSTART_MAX_REQUEST_BYTES"
DEFAULT_MAX_REQUEST_BYTES = 8 * 1024 * 1024
TORCH_THREADS_ENV = "WARMSTART_TORCH_THREADS"
# Intra-op threads of each forward pass; 0: the CPUs this process may use, shared out among
# the model instances (WARMSTART_MODEL_INSTANCES).
DEFAULT_TORCH_THREADS = 0


def _max_request_bytes() -> int:
    value = int(env_number(os.environ, MAX_REQUEST_BYTES_ENV, DEFAULT_MAX_REQUEST_BYTES, int))
    if value < 1024:
        raise ValueError(f"{MAX_REQUEST_BYTES_ENV} must be at least 1024, got {value}")
    return value


def _torch_threads() -> int:
    value = int(env_number(os.environ, TORCH_THREADS_ENV, DEFAULT_TORCH_THREADS, int))
    if value < 0:
        raise ValueError(f"{TORCH_THREADS_ENV} must be 0 (one per core) or more, got {value}")
    return value


@dataclass(frozen=True)
class ServerSettings:
    uri: str
    model_name: str
    workdir: Path
    host: str = "127.0.0.1"
    port: int = 8080
    expected_digest: str | None = None
    device: str | None = None
    max_request_texts: int = 256
    max_length: int = 512
    retry_initial_s: float = 1.0
    retry_max_s: float = 30.0
    # Read from the environment when not given: the Deployment sets them per model.
    batching: BatchingSettings = field(default_factory=BatchingSettings.from_env)
    max_request_bytes: int = field(default_factory=_max_request_bytes)
    torch_threads: int = field(default_factory=_torch_threads)
