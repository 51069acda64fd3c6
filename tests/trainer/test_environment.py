"""Writable paths and offline mode for a read-only root filesystem."""

from __future__ import annotations

import json
from pathlib import Path

from warmstart_trainer.environment import cgroup_cpu_limit, prepare_process_environment
from warmstart_trainer.termination import LIMIT_BYTES, encode_summary


def test_caches_point_into_the_workdir_and_hub_access_is_off(tmp_path: Path) -> None:
    env = {"XDG_CACHE_HOME": "/mounted/cache", "HOME": "/proc/no-such-home", "TMPDIR": ""}
    prepare_process_environment(tmp_path, env)
    assert env["HOME"] == str(tmp_path / "home") and env["TMPDIR"] == str(tmp_path / "tmp")
    assert env["HF_HUB_OFFLINE"] == "1" and env["TRANSFORMERS_OFFLINE"] == "1"
    assert env["HF_HOME"] == str(tmp_path / "hf") and (tmp_path / "hf").is_dir()
    assert env["TRITON_CACHE_DIR"].startswith(str(tmp_path))
    assert env["XDG_CACHE_HOME"] == "/mounted/cache"  # set by the pod spec: kept


def test_cgroup_cpu_limit(tmp_path: Path) -> None:
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text("250000 100000\n")
    assert cgroup_cpu_limit(cpu_max) == 2
    cpu_max.write_text("max 100000\n")
    assert cgroup_cpu_limit(cpu_max) is None
    assert cgroup_cpu_limit(tmp_path / "absent") is None


def test_termination_summary_stays_under_the_kubelet_limit() -> None:
    summary = {
        "result": "Succeeded",
        "version": "v3",
        "manifestDigest": "sha256:x",
        "holdout": {"candidate": {"accuracy": 0.9}},
        "notes": ["x" * 100] * 100,
    }
    data = encode_summary(summary)
    assert len(data) <= LIMIT_BYTES
    decoded = json.loads(data)
    assert decoded["version"] == "v3" and decoded["truncated"] is True
    small = encode_summary({"result": "Succeeded"})
    assert json.loads(small) == {"result": "Succeeded"}
