"""The short JSON a finished container leaves in its termination message.

Kubernetes copies the file at ``terminationMessagePath`` into the pod status, where the
operator reads the outcome without fetching logs. The kubelet keeps at most 4 KiB, so the
summary is trimmed to fit rather than cut mid-JSON.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

ENV = "TERMINATION_MESSAGE_PATH"
DEFAULT_PATH = "/dev/termination-log"
LIMIT_BYTES = 4096


def encode_summary(summary: dict[str, Any], limit: int = LIMIT_BYTES) -> bytes:
    data = json.dumps(summary, sort_keys=True, separators=(",", ":")).encode("utf-8")
    if len(data) <= limit:
        return data
    # Drop the bulkiest detail first; what identifies the outcome stays.
    keep = ("result", "exitCode", "error", "version", "uri", "manifestDigest", "parent")
    trimmed = {key: summary[key] for key in keep if key in summary}
    if "error" in trimmed:
        trimmed["error"] = str(trimmed["error"])[:2000]
    trimmed["truncated"] = True
    return json.dumps(trimmed, sort_keys=True, separators=(",", ":")).encode("utf-8")[:limit]


def write_termination_message(summary: dict[str, Any]) -> Path | None:
    """Write the summary if the path is writable; outside a pod it usually is not."""
    path = Path(os.environ.get(ENV) or DEFAULT_PATH)
    try:
        with path.open("wb") as handle:
            handle.write(encode_summary(summary))
    except OSError as exc:
        log.debug("no termination message written to %s: %s", path, exc)
        return None
    return path
