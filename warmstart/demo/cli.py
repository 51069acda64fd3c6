"""`python -m warmstart.demo [--quick] [--down]`: the whole story on the local cluster.

scripts/demo.sh runs this from the project's environment after setting that up.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from warmstart.cli.errors import CliError
from warmstart.cli.kube import Kube, KubeOptions
from warmstart.demo import install, setup
from warmstart.demo import manifests as m
from warmstart.demo.console import Console, elapsed
from warmstart.demo.errors import DemoError
from warmstart.demo.plan import FULL, QUICK, Plan
from warmstart.demo.podlogs import KubectlLogs
from warmstart.demo.story import Story, cli_command
from warmstart.demo.watch import JobWatcher
from warmstart_localcluster import cluster as localcluster
from warmstart_localcluster import paths

NAMESPACE = "reviews"
# The demo applies the examples as a GitOps tool would, under a manager of its own.
FIELD_MANAGER = "warmstart-demo"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scripts/demo.sh",
        description="Warm-start retraining with verifiable lineage, end to end on a local "
        "cluster: real MiniLM weights, real review snippets.",
    )
    parser.add_argument("--quick", action="store_true",
                        help="tiny data windows and 1-2 epochs (a few minutes; for CI)")
    parser.add_argument("--down", action="store_true",
                        help="stop the local cluster at the end instead of leaving it up")
    parser.add_argument("--stop-after", type=int, choices=range(1, 6), metavar="STEP",
                        help="stop after story step STEP (1-5; default: the whole story), "
                        "e.g. 2 to see one warm start without the rest")
    parser.add_argument("--state-dir", type=Path, default=None,
                        help="the local cluster's state (default: $WARMSTART_STATE or "
                        "~/.cache/warmstart/cluster)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    state_dir: Path = (args.state_dir or paths.default_state_dir()).resolve()
    plan = QUICK if args.quick else FULL
    console = Console()
    try:
        run(plan, state_dir, console, stop_after=args.stop_after)
    except (DemoError, CliError) as exc:
        console.raw(f"\ndemo failed: {exc}")
        console.raw(f"operator log: {install.log_hint(state_dir)}")
        _finish(state_dir, console, down=args.down, failed=True)
        return 1
    except KeyboardInterrupt:
        console.raw("\ninterrupted")
        _finish(state_dir, console, down=args.down, failed=True)
        return 130
    _finish(state_dir, console, down=args.down, failed=False)
    return 0


def run(plan: Plan, state_dir: Path, console: Console, stop_after: int | None = None) -> None:
    started = time.monotonic()
    console.raw(f"warmstart demo ({plan.describe()})")
    console.title("0. Set-up: local cluster, CRDs, operator, base model, data")
    info = setup.start_cluster(state_dir, console)
    kube = Kube.connect(KubeOptions(kubeconfig=info.kubeconfig, namespace=NAMESPACE),
                        kubectl_path=info.kubectl, field_manager=FIELD_MANAGER)
    try:
        lineage = m.load(m.LINEAGE_EXAMPLE)
        versions_uri, base_uri, datasets_uri = m.storage_uris(lineage)
        s3_env = info.s3_env()
        store = setup.storage(s3_env)
        # The operator first: it releases its finalizers on the objects of an earlier run
        # while their namespace is deleted.
        install.install_crds(kube, console)
        install.install_operator(kube, state_dir, info.helm, console)
        setup.reset_namespace(kube, console)
        setup.ensure_bucket(store, m.bucket_of(versions_uri))
        base_key = base_uri[len(versions_uri):] if base_uri.startswith(versions_uri) else None
        removed = (setup.clear_prefix(store, versions_uri, keep=base_key)
                   + setup.clear_prefix(store, datasets_uri))
        if removed:
            console.say(f"removed {removed} objects an earlier run left in {versions_uri} "
                        f"and {datasets_uri}")
        setup.publish_base(s3_env, base_uri, m.LINEAGE, console)
        setup.upload_windows(store, datasets_uri, plan, console)

        watcher = JobWatcher(kube, KubectlLogs(kube), console)
        story = Story(kube, console, watcher, store, plan, s3_env, output_dir=state_dir / "demo")
        steps = (story.lineage_and_serving, story.week1, story.week2, story.mislabelled,
                 story.rollback, lambda: story.lineage_record(cli_command()))
        for step in steps[:stop_after]:
            step()

        console.title(f"Done in {elapsed(time.monotonic() - started)}")
        for line in story.summary():
            console.detail(line)
        story.results["seconds"] = round(time.monotonic() - started, 1)
        story.results["plan"] = plan.name
        summary = state_dir / "demo" / "summary.json"
        summary.write_text(json.dumps(story.results, indent=2, sort_keys=True) + "\n")
        console.say(f"results as JSON: {summary}")
    finally:
        kube.close()


def _finish(state_dir: Path, console: Console, *, down: bool, failed: bool) -> None:
    default = state_dir == paths.default_state_dir().resolve()
    cluster_cmd = "warmstart-cluster" + ("" if default else f" --state-dir {state_dir}")
    if down:
        console.title("Stopping the local cluster (--down)")
        localcluster.down(state_dir)
        return
    info = localcluster.status(state_dir)
    if info is None:
        return
    what = "look around" if not failed else "investigate"
    console.raw(f"\nThe local cluster is still up. To {what}:")
    venv_bin = Path(sys.executable).parent
    for line in (
        f"export PATH={shlex.quote(str(venv_bin))}:$PATH",
        f"export KUBECONFIG={shlex.quote(info.kubeconfig)}",
        f"alias kubectl={shlex.quote(info.kubectl)}",
        f"kubectl get warmstart -n {NAMESPACE}               # both kinds, status columns",
        f"kubectl get mlin {m.LINEAGE} -n {NAMESPACE} -o yaml   # versions, conditions",
        f"kubectl describe wsj {m.MISLABELLED} -n {NAMESPACE}   # the gate's reason, events",
        f"kubectl get deploy,rs,pods -n {NAMESPACE}",
        f"kubectl get events -n {NAMESPACE} --sort-by=.lastTimestamp",
        f"warmstart lineage tree {m.LINEAGE} -n {NAMESPACE}",
        f"warmstart rollback {m.LINEAGE} -n {NAMESPACE}          # or edit pinnedVersion",
        f"kubectl logs -n {NAMESPACE} POD                        # a pod's log",
        f"{cluster_cmd} down                                     # stop everything",
    ):
        console.raw(f"  {line}")


if __name__ == "__main__":
    sys.exit(main())
