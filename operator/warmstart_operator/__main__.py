"""`python -m warmstart_operator`: run the operator (what the chart's Deployment runs)."""

from __future__ import annotations

import argparse
import logging
import os

import kopf

from warmstart_operator import handlers

_ = handlers  # importing registers the handlers with Kopf


def main() -> None:
    parser = argparse.ArgumentParser(prog="warmstart-operator")
    parser.add_argument("--namespace", "-n", action="append", default=[],
                        help="watch only these namespaces (repeatable); default: all")
    parser.add_argument("--liveness", default=os.environ.get("WARMSTART_HEALTH_ENDPOINT"),
                        help="e.g. http://0.0.0.0:8081/healthz")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    namespaces = args.namespace or [
        ns for ns in os.environ.get("WARMSTART_NAMESPACES", "").split(",") if ns]
    kopf.run(
        standalone=True,
        clusterwide=not namespaces,
        namespaces=namespaces,
        liveness_endpoint=args.liveness,
    )


if __name__ == "__main__":
    main()
