#!/usr/bin/env bash
# The demo (README): sets up what it needs (the Python environment; the control-plane
# binaries are built from Go modules on first use, ~20 minutes on 2 cores, then cached),
# brings up the local cluster and S3 server (or reuses a running one), and tells the
# warm-start story on real MiniLM weights and real review snippets.
#
#   scripts/demo.sh            the full story (under 10 minutes on 2 CPU cores, caches warm)
#   scripts/demo.sh --quick    tiny windows, fewer epochs (CI)
#   scripts/demo.sh --down     stop the cluster at the end instead of leaving it up
#   scripts/demo.sh --stop-after 2   only the story's steps 1-2 (set-up, lineage, week 1)
#   scripts/demo.sh --node kubelet   on the opt-in real node (root; run
#                              scripts/ensure-host-packages.sh and scripts/build-images first)
#
# WARMSTART_STATE=DIR runs it against another cluster state directory;
# WARMSTART_DEMO_OPERATOR=process runs the operator as a local process, not the chart's pod.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
venv=$(bash scripts/ensure-venv.sh)
export PATH="$venv/bin:$PATH"
exec "$venv/bin/python" -m warmstart.demo "$@"
