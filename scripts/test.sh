#!/usr/bin/env bash
# The test command (README): sets up everything it needs on a fresh machine (Python
# environment, the Debian packages a real node needs, the cluster's binaries built from Go
# modules, the project's images built with buildah; all cached outside the repo), then
# runs lint, strict type checks and the whole test suite on the local cluster's real node.
# Extra arguments go to pytest, e.g. `scripts/test.sh -m "not cluster"` for the unit tests
# alone. Root only: the node runs containers, a bridge and iptables rules.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
venv=$(bash scripts/ensure-venv.sh)
export PATH="$venv/bin:$PATH"
echo "==> host packages (containerd, runc, CNI plugins, iptables, buildah, debootstrap)"
bash scripts/ensure-host-packages.sh
echo "==> cluster binaries"
warmstart-cluster build
echo "==> ruff"
ruff check .
echo "==> mypy --strict"
# Its cache outside the checkout: a fresh clone then checks in seconds instead of a minute
# (mypy trusts a cached module only when the source's hash matches).
MYPY_CACHE_DIR="${MYPY_CACHE_DIR:-${WARMSTART_CACHE:-$HOME/.cache/warmstart}/mypy-cache}" mypy
echo "==> images (the node runs what trainer-image/Dockerfile and operator/Dockerfile make)"
bash scripts/build-images

# One real node per machine (fixed bridge, address ranges, image store): a second test run
# or a real-node demo waits here instead of failing half-way.
exec 9>/tmp/warmstart-node.lock
if ! flock -n 9; then
  echo "==> waiting for another run that holds this machine's real node (/tmp/warmstart-node.lock)"
  flock 9
fi
# A cluster a killed earlier run left holding the node is stopped; anyone else's stops us.
python -m tests.leftovers

# pytest exits 5 when a phase selects no test (e.g. `-m "not cluster"` leaves phase 2 none).
ran=0
status=0
phase() {
  local rc=0
  pytest "$@" || rc=$?
  if [ "$rc" -eq 5 ]; then return 0; fi
  ran=1
  if [ "$rc" -ne 0 ]; then status=$rc; fi
}
echo "==> pytest: everything on one session cluster"
# Two workers (pytest-xdist) share the run's one session cluster, handed one test at a
# time: the minutes-long stories run side by side while the short tests fill in around
# them. WARMSTART_TEST_WORKERS=0 runs everything in this one process.
phase -n "${WARMSTART_TEST_WORKERS:-2}" --maxschedchunk 1 "$@"
echo "==> pytest --own-node: the tests that start a cluster of their own, one at a time"
phase -n 0 --own-node "$@"
if [ "$ran" -eq 0 ]; then
  echo "no test selected" >&2
  exit 5
fi
exit "$status"
