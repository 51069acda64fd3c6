"""Before a test run takes the machine's one real node (scripts/test.sh, holding the
machine-wide lock, so no other test run is active): a cluster that a killed or failed
earlier test run left holding the node is stopped; a cluster of anyone else (a demo, a
developer's) stops the run at once with one clear message, instead of every cluster test
failing on it.

    python -m tests.leftovers
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from warmstart_localcluster import cluster as localcluster
from warmstart_localcluster import paths
from warmstart_localcluster.node import network

# Temporary state dirs the tests and benchmarks make (tests/conftest.own_cluster_state,
# benchmarks.common.own_cluster) and pytest's own temporary directories.
THROWAWAY_PREFIXES = ("wsown-", "wsbench-", "pytest-of-")


def session_state() -> Path:
    """The session cluster's state dir (WARMSTART_TEST_CLUSTER puts it elsewhere)."""
    return Path(os.environ.get("WARMSTART_TEST_CLUSTER", paths.cache_dir() / "test-cluster"))


def is_test_leftover(holder: Path, temp: Path | None = None) -> bool:
    """Whether the state dir holding the node is one only a test run makes."""
    temp = Path(tempfile.gettempdir()) if temp is None else temp
    if holder == session_state().resolve():
        return True
    if not holder.is_relative_to(temp):
        return False
    inside = holder.relative_to(temp).parts
    return bool(inside) and inside[0].startswith(THROWAWAY_PREFIXES)


def main() -> int:
    holder = network.owner()
    if holder is None:
        return 0
    if holder and is_test_leftover(Path(holder)):
        print(f"==> stopping the cluster an earlier test run left holding the node ({holder})",
              flush=True)
        localcluster.down(Path(holder))
        if network.owner() is None:
            return 0
    print(f"error: the machine's real node is held by the cluster at {holder or 'unknown'}; "
          f"stop it first (warmstart-cluster --state-dir {holder or 'DIR'} down), then run "
          "the tests again", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
