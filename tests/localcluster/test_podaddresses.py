"""Pod address ranges: two live clusters never share one, even when their hashes collide."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from warmstart_localcluster.nodeagent.podaddresses import claim_octet


def test_a_held_range_is_not_handed_to_a_second_cluster(tmp_path: Path) -> None:
    locks = tmp_path / "locks"
    first, held = claim_octet(tmp_path / "a", locks)
    # The same state dir hashes to the same octet: while the first holds it, the next.
    second, other = claim_octet(tmp_path / "a", locks)
    assert second != first and 1 <= second <= 250
    held.close()
    other.close()
    again, handle = claim_octet(tmp_path / "a", locks)
    assert again == first  # released: a restarted cluster keeps its range
    handle.close()


def test_a_dead_process_releases_its_range(tmp_path: Path) -> None:
    locks = tmp_path / "locks"
    code = ("import sys; from pathlib import Path; "
            "from warmstart_localcluster.nodeagent.podaddresses import claim_octet; "
            f"print(claim_octet(Path({str(tmp_path / 'a')!r}), Path({str(locks)!r}))[0])")
    child = int(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                               check=True).stdout)
    mine, handle = claim_octet(tmp_path / "a", locks)
    assert mine == child
    handle.close()
