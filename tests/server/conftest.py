from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.server.support import RunningServer, running_server

# Small bounds, so that splitting and the 413 are reached with small requests.
SERVER_ENV = {
    "WARMSTART_MAX_BATCH_SIZE": "8",
    "WARMSTART_MAX_QUEUE_DELAY_MS": "2",
    "WARMSTART_MAX_QUEUE_SIZE": "64",
    "WARMSTART_MAX_REQUEST_BYTES": str(256 * 1024),
}


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One server process for the conformance tests (starting one takes seconds)."""
    with running_server(tmp_path_factory.mktemp("oip-server"), SERVER_ENV) as running:
        yield running
