"""Log setup, the JSON-lines metrics log, and human-readable progress lines with an ETA."""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any


def configure_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(
        level=level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    # botocore logs request details (never keys, but headers and URLs) at DEBUG; keep it quiet.
    for noisy in ("botocore", "boto3", "s3transfer", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


class MetricsLog:
    """Appends one JSON object per line: ``{"event": ..., "time": ..., ...}``.

    The file survives a restart through progress checkpoints and ships with the version, so
    the whole training curve of a model stays next to it.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, event: str, **fields: Any) -> None:
        entry = {"event": event, "time": round(time.time(), 3), **fields}
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(_json_safe(entry), sort_keys=True) + "\n")

    def events(self, event: str | None = None) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        entries = [
            json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines() if line
        ]
        return [e for e in entries if event is None or e.get("event") == event]


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    return value


def format_eta(seconds: float) -> str:
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    return str(timedelta(seconds=round(seconds)))


class ProgressReporter:
    """Logs a progress line at most every ``interval_s`` seconds (and when forced)."""

    def __init__(self, logger: logging.Logger, total_steps: int, interval_s: float = 10.0) -> None:
        self._log = logger
        self._total = total_steps
        self._interval = interval_s
        self._last = -math.inf

    def report(
        self,
        *,
        step: int,
        epoch: float,
        max_epochs: int,
        loss: float,
        lr: float,
        examples_per_second: float,
        seconds_per_step: float,
        force: bool = False,
    ) -> None:
        now = time.monotonic()
        if not force and now - self._last < self._interval:
            return
        self._last = now
        eta = (self._total - step) * seconds_per_step
        self._log.info(
            "step %d/%d epoch %.2f/%d loss %.4f lr %.2e %.1f examples/s eta %s "
            "(at most: early stopping may end sooner)",
            step,
            self._total,
            epoch,
            max_epochs,
            loss,
            lr,
            examples_per_second,
            format_eta(eta),
        )
