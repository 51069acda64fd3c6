#!/usr/bin/env bash
# The test command (README): sets up everything it needs on a fresh machine (Python
# environment, control-plane binaries built from Go modules, all cached outside the repo),
# then runs lint, strict type checks and the whole test suite. Extra arguments go to pytest,
# e.g. `scripts/test.sh -m "not cluster"` for the unit tests alone.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
venv=$(bash scripts/ensure-venv.sh)
export PATH="$venv/bin:$PATH"
echo "==> control-plane binaries"
warmstart-cluster build
echo "==> ruff"
ruff check .
echo "==> mypy --strict"
# Its cache outside the checkout: a fresh clone then checks in seconds instead of a minute
# (mypy trusts a cached module only when the source's hash matches).
MYPY_CACHE_DIR="${MYPY_CACHE_DIR:-${WARMSTART_CACHE:-$HOME/.cache/warmstart}/mypy-cache}" mypy
echo "==> pytest"
# Two workers (pytest-xdist), each with a cluster of its own (on a real node,
# WARMSTART_TEST_NODE=kubelet, both share the run's one), handed one test at a time: the
# minutes-long stories run side by side while the short tests fill in around them.
# WARMSTART_TEST_WORKERS=0 runs everything in this one process.
exec pytest -n "${WARMSTART_TEST_WORKERS:-2}" --maxschedchunk 1 "$@"
