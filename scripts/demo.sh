#!/usr/bin/env bash
# The demo (README): sets up what it needs (the Python environment, the Debian packages a
# real node needs, the project's images; the cluster's binaries are built from Go modules
# on first use; all cached), brings up the local cluster and S3 server (or reuses a running
# one), and tells the warm-start story on real MiniLM weights and real review snippets.
# Root only: the cluster's real node runs containers, a bridge and iptables rules.
#
#   scripts/demo.sh            the full story (under 10 minutes on 2 CPU cores, caches warm)
#   scripts/demo.sh --quick    tiny windows, fewer epochs (CI)
#   scripts/demo.sh --down     stop the cluster at the end instead of leaving it up
#   scripts/demo.sh --stop-after 2   only the story's steps 1-2 (set-up, lineage, week 1)
#
# WARMSTART_STATE=DIR runs it against another cluster state directory;
# WARMSTART_DEMO_OPERATOR=process runs the operator as a local process, not the chart's pod.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
venv=$(bash scripts/ensure-venv.sh)
export PATH="$venv/bin:$PATH"
bash scripts/ensure-host-packages.sh
bash scripts/build-images
exec "$venv/bin/python" -m warmstart.demo "$@"
