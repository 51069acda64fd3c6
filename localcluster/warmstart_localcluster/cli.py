"""`warmstart-cluster`: build, start, stop and inspect the local control plane."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from dataclasses import asdict
from pathlib import Path

from warmstart_localcluster import binaries, cluster, paths
from warmstart_localcluster.errors import ClusterError
from warmstart_localcluster.node import images, registry


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="warmstart-cluster",
        description="Local Kubernetes cluster (control plane, one real node) + S3 server for "
                    "warmstart's tests and demo.",
    )
    parser.add_argument("--state-dir", type=Path, default=paths.default_state_dir(),
                        help="where the cluster keeps its state (default: %(default)s)")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start the cluster (building binaries the first time)")
    up.add_argument("--fresh", action="store_true", help="discard a running cluster's state")
    sub.add_parser("down", help="stop every process of the cluster")
    sub.add_parser("status", help="print the running cluster's endpoints as JSON")
    sub.add_parser("env", help="print shell exports for KUBECONFIG and the S3 credentials")
    sub.add_parser("build", help="build (or find) every binary and print their paths")
    push = sub.add_parser("push-images", help="push images from buildah's store to the local "
                          "registry the real node pulls from (scripts/build-images runs it)")
    push.add_argument("refs", nargs="+", metavar="REF", help="e.g. localhost/warmstart/trainer:dev")
    args = parser.parse_args(argv)
    state_dir: Path = args.state_dir.resolve()

    try:
        if args.command == "up":
            info = cluster.up(state_dir, fresh=args.fresh)
            print(f"KUBECONFIG={info.kubeconfig}")
            print(f"kubectl: {info.kubectl}")
            print(f"S3 endpoint: {info.s3_endpoint}")
        elif args.command == "down":
            cluster.down(state_dir)
        elif args.command == "status":
            running = cluster.status(state_dir)
            if running is None:
                print(f"no local cluster is running at {state_dir}", file=sys.stderr)
                return 1
            shown = asdict(running)
            shown["s3_secret_key"] = "***"  # noqa: S105 (masking it: never print a secret)
            shown["s3_tenants"] = {name: [c[0], "***"] for name, c in running.s3_tenants.items()}
            print(json.dumps(shown, indent=2))
        elif args.command == "env":
            info = cluster.ClusterInfo.load(state_dir)
            exports = {"KUBECONFIG": info.kubeconfig, **info.s3_env()}
            for key, value in exports.items():
                print(f"export {key}={shlex.quote(value)}")
            print(f"alias kubectl={shlex.quote(info.kubectl)}")
        elif args.command == "build":
            for name, path in binaries.ensure_all().items():
                print(f"{name}: {path}")
        elif args.command == "push-images":
            registry.push(args.refs, images.buildah())
    except (ClusterError, binaries.BinaryError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
