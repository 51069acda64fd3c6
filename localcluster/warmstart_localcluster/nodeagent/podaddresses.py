"""Which 127.N.0.0/16 range a node agent hands its pods: one per running cluster.

The range's second octet starts from a hash of the state dir (the same cluster keeps the
same range across restarts), but 250 ranges shared by a hash collide often enough once a
test run has several clusters up at once: two clusters then hand out the same pod
address, and a request meant for one cluster's pod reaches the other's. So each agent
holds an exclusive lock on its octet's file for as long as it lives (the kernel releases
it when the process dies, however it dies) and takes the next free octet when another
cluster holds it.
"""

from __future__ import annotations

import fcntl
import hashlib
from pathlib import Path
from typing import IO

RANGES = 250  # 127.1 ... 127.250; 127.0.0.0/16 stays free for the components


def claim_octet(state_dir: Path, lock_dir: Path) -> tuple[int, IO[str]]:
    """The octet this agent uses and the open lock file that holds it (keep it open)."""
    lock_dir.mkdir(parents=True, exist_ok=True)
    start = hashlib.sha256(str(state_dir.resolve()).encode()).digest()[0]
    for step in range(RANGES):
        octet = 1 + (start + step) % RANGES
        handle = (lock_dir / f"{octet}.lock").open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        return octet, handle
    raise RuntimeError(f"every pod address range is held by a running cluster ({lock_dir})")
