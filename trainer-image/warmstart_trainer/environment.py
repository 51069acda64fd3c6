"""Writable paths and offline settings, applied before torch or transformers are imported.

The pod runs with a read-only root filesystem: every path a library might write (Hugging Face
caches, torch and triton kernel caches, matplotlib's config) must point into the work
directory, an emptyDir. Hugging Face libraries read these variables at import time, so
``prepare_process_environment`` runs first thing in ``cli.main``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import MutableMapping
from pathlib import Path

WORKDIR_ENV = "WARMSTART_WORKDIR"

# Never reach a model hub: weights come from object storage, verified against a manifest.
_OFFLINE = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TOKENIZERS_PARALLELISM": "false",
}

_CACHE_DIRS = {
    "HF_HOME": "hf",
    "XDG_CACHE_HOME": "cache",
    "TORCHINDUCTOR_CACHE_DIR": "cache/torchinductor",
    "TRITON_CACHE_DIR": "cache/triton",
    "MPLCONFIGDIR": "cache/matplotlib",
}


def resolve_workdir(env: MutableMapping[str, str] | None = None) -> Path:
    """``$WARMSTART_WORKDIR`` (created if missing), else a fresh directory under ``$TMPDIR``."""
    env = os.environ if env is None else env
    configured = env.get(WORKDIR_ENV)
    if configured:
        path = Path(configured)
        path.mkdir(parents=True, exist_ok=True)
        return path.resolve()
    return Path(tempfile.mkdtemp(prefix="warmstart-")).resolve()


def cgroup_cpu_limit(cpu_max: Path = Path("/sys/fs/cgroup/cpu.max")) -> int | None:
    """Whole CPUs allowed by the container's cgroup v2 quota, or None without a quota."""
    try:
        quota, period = cpu_max.read_text(encoding="ascii").split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    return max(1, int(int(quota) // int(period)))


def prepare_process_environment(workdir: Path, env: MutableMapping[str, str] | None = None) -> None:
    """Force offline mode and point every cache a library may write into ``workdir``.

    Cache variables already set by the pod spec are kept (an operator may mount a shared
    cache); offline switches are always forced.
    """
    env = os.environ if env is None else env
    env.update(_OFFLINE)
    # Python's tempfile and libraries that write under ~ need a writable place too; with a
    # read-only root filesystem only the work directory is.
    for name, relative in (("TMPDIR", "tmp"), ("HOME", "home")):
        current = env.get(name)
        if not current or not os.access(current, os.W_OK):
            path = workdir / relative
            path.mkdir(parents=True, exist_ok=True)
            env[name] = str(path)
    # torch sizes its thread pool by the host's cores, not the pod's CPU limit; with more
    # threads than CPUs the OpenMP workers spin against the quota and steps get many times
    # slower. Must be set before torch is imported.
    limit = cgroup_cpu_limit()
    if limit is not None and not env.get("OMP_NUM_THREADS"):
        env["OMP_NUM_THREADS"] = str(min(limit, os.cpu_count() or limit))
    for name, relative in _CACHE_DIRS.items():
        if not env.get(name):
            path = workdir / relative
            path.mkdir(parents=True, exist_ok=True)
            env[name] = str(path)
