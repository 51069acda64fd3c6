"""Progress checkpoints in object storage, under ``<output>/_progress/step-<N>/``."""

from __future__ import annotations

import json
import logging
import re
import shutil
from pathlib import Path

from warmstart import record, storage
from warmstart_trainer.progress import (
    FORMAT,
    MARKER,
    PROGRESS_DIR,
    Checkpoint,
    read_checkpoint,
    write_checkpoint,
)

log = logging.getLogger(__name__)

_STEP_RE = re.compile(r"step-(\d+)/$")


class ProgressStore:
    """Progress checkpoints of one output version, kept under ``<output>/_progress/``."""

    def __init__(
        self, store: storage.Storage, output_prefix: str, staging: Path, *, keep: int = 2
    ) -> None:
        self._store = store
        self._prefix = record.ensure_prefix(output_prefix) + PROGRESS_DIR + "/"
        self._staging = staging
        self._keep = max(1, keep)

    @property
    def prefix(self) -> str:
        return self._prefix

    def _step_prefix(self, step: int) -> str:
        return f"{self._prefix}step-{step:010d}/"

    def save(self, checkpoint: Checkpoint, metrics_log: Path | None) -> str:
        """Upload one checkpoint, the marker last, then drop all but the newest ``keep``."""
        local = self._staging / f"step-{checkpoint.progress.step:010d}"
        write_checkpoint(checkpoint, local, metrics_log)
        names = sorted(p.name for p in local.iterdir() if p.is_file())
        prefix = self._step_prefix(checkpoint.progress.step)
        self._store.upload_files([(local / name, prefix + name) for name in names])
        marker = {
            "format": FORMAT,
            "step": checkpoint.progress.step,
            "files": {name: record.file_sha256(local / name) for name in names},
        }
        self._store.put_bytes(prefix + MARKER, json.dumps(marker, sort_keys=True).encode())
        shutil.rmtree(local, ignore_errors=True)
        self._prune()
        return prefix

    def _complete_steps(self) -> list[int]:
        steps = []
        for info in self._store.list(self._prefix):
            if info.uri.endswith("/" + MARKER):
                match = _STEP_RE.search(info.uri[: -len(MARKER)])
                if match:
                    steps.append(int(match.group(1)))
        return sorted(steps, reverse=True)

    def _prune(self) -> None:
        for step in self._complete_steps()[self._keep :]:
            prefix = self._step_prefix(step)
            # Marker first: a prune cut short leaves an incomplete folder, never a wrong one.
            self._store.delete(prefix + MARKER)
            self._store.delete_prefix(prefix)

    def load_latest(self, spec_fingerprint: str) -> Checkpoint | None:
        """The newest complete checkpoint written for this spec, verified; None if none."""
        for step in self._complete_steps():
            prefix = self._step_prefix(step)
            local = self._staging / f"resume-{step:010d}"
            try:
                marker = json.loads(self._store.get_bytes(prefix + MARKER))
                files: dict[str, str] = marker["files"]
                if local.exists():
                    shutil.rmtree(local)
                self._store.download_files(
                    [(prefix + name, local / record.check_file_name(name)) for name in files]
                )
                for name, digest in files.items():
                    actual = record.file_sha256(local / name)
                    if actual != digest:
                        raise record.DigestMismatchError(prefix + name, digest, actual)
                checkpoint = read_checkpoint(local)
            except (storage.StorageError, record.RecordError, ValueError, KeyError) as exc:
                log.warning("skipped progress checkpoint %s: %s", prefix, exc)
                continue
            if checkpoint.spec_fingerprint != spec_fingerprint:
                log.warning("skipped progress checkpoint %s: written for a different spec", prefix)
                continue
            log.info("restored progress checkpoint %s (step %d)", prefix, step)
            return checkpoint
        return None

    def clear(self) -> None:
        self._store.delete_prefix(self._prefix)
