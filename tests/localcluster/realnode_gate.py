"""The opt-in gate every real-node test module shares (`pytestmark = REALNODE`)."""

from __future__ import annotations

import os

import pytest

REALNODE = [
    pytest.mark.realnode,
    pytest.mark.skipif(
        os.environ.get("WARMSTART_REALNODE") != "1",
        reason="real-node tests are opt-in: set WARMSTART_REALNODE=1 (root; run "
               "scripts/ensure-host-packages.sh and scripts/build-images first)",
    ),
]
