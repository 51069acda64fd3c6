"""The opt-in gate every real-node test module shares (`pytestmark = REALNODE`)."""

from __future__ import annotations

import os

import pytest

from tests.nodeprofile import agent_only

REALNODE = [
    pytest.mark.realnode,
    pytest.mark.skipif(
        os.environ.get("WARMSTART_REALNODE") != "1",
        reason="real-node tests are opt-in: set WARMSTART_REALNODE=1 (root; run "
               "scripts/ensure-host-packages.sh and scripts/build-images first)",
    ),
    # Each module starts a real node of its own; the machine has room for one, and the
    # real-node test profile's session cluster holds it.
    agent_only("starts a real node of its own, and the session's real node holds the "
               "machine's only one: run it without WARMSTART_TEST_NODE"),
]
