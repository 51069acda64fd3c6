"""Entry point of `warmstart` and of the kubectl plugin `kubectl-warmstart`.

Exit codes: 0 success, 1 the hash chain is broken, 2 any error (see ``errors``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from warmstart.cli import auditcmds, commands
from warmstart.cli.errors import EXIT_ERROR, CliError
from warmstart.cli.kube import KubeOptions
from warmstart.cli.progress import Progress
from warmstart.history import parse_time

EPILOG = """\
exit codes: 0 success; 1 lineage verify found a broken link or a refused signature, or the
serving history was tampered with; 2 error (unknown lineage or
version, no cluster, missing credentials, storage unreachable, bad arguments).
Progress goes to stderr; -q silences it."""


def program_name(argv0: str) -> str:
    # kubectl runs plugins as kubectl-<name>; users typed `kubectl warmstart`.
    return "kubectl warmstart" if Path(argv0).name.startswith("kubectl-") else "warmstart"


def _common_options() -> argparse.ArgumentParser:
    """Options every command takes after its name, as kubectl users expect (`... -n ns`)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-n", "--namespace", help="namespace (default: the context's)")
    common.add_argument(
        "--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config)"
    )
    common.add_argument("--context", help="kubeconfig context (default: the current one)")
    common.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    return common


def build_parser(prog: str) -> argparse.ArgumentParser:
    common = _common_options()
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Show, verify and pin the versions of a warmstart ModelLineage.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    top = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    lineage = top.add_parser("lineage", help="show or verify a lineage")
    actions = lineage.add_subparsers(dest="action", required=True, metavar="ACTION")

    tree = actions.add_parser(
        "tree", parents=[common], help="the version tree with phase, metric and markers"
    )
    tree.add_argument("name", metavar="NAME", help="ModelLineage name")
    tree.add_argument("--ascii", action="store_true", help="draw with ASCII only")

    verify = actions.add_parser(
        "verify",
        parents=[common],
        help="walk the hash chain in object storage from a version to the base",
        description="Walk the hash chain from VERSION (default: serving, else latest) to "
        "the base, checking each manifest's digest and every file's sha256. Exit 1 names "
        "the first broken link.",
    )
    verify.add_argument("name", metavar="NAME", help="ModelLineage name")
    verify.add_argument("version", metavar="VERSION", nargs="?", help="version to start from")
    verify.add_argument(
        "--manifests-only",
        action="store_true",
        help="check the manifest chain but not the files (e.g. past retired versions)",
    )
    verify.add_argument(
        "--s3-endpoint",
        metavar="URL",
        help="reach storage here instead of the Secret's AWS_ENDPOINT_URL (e.g. through a "
        "port-forward when that is an in-cluster address)",
    )

    _audit_parsers(actions, common)

    curves = actions.add_parser(
        "curves",
        parents=[common],
        help="validation loss and accuracy against steps for versions, as SVG (and PNG)",
    )
    curves.add_argument("name", metavar="NAME", help="ModelLineage name")
    curves.add_argument("versions", metavar="VERSION", nargs="+", help="e.g. a warm and a cold")
    curves.add_argument("-o", "--output", type=Path, metavar="FILE.svg",
                        help="default NAME-V1-V2-curves.svg; a PNG is written beside it")
    curves.add_argument("--s3-endpoint", metavar="URL",
                        help="reach storage here instead of the Secret's")

    graph = actions.add_parser("graph", parents=[common], help="draw the lineage")
    graph.add_argument("name", metavar="NAME", help="ModelLineage name")
    graph.add_argument("--format", required=True, choices=sorted(commands.GRAPH_RENDERERS))
    graph.add_argument("-o", "--output", type=Path, metavar="FILE", help="write here, not stdout")

    promote = top.add_parser(
        "promote",
        parents=[common],
        help="pin a version: set spec.pinnedVersion (the operator rolls out)",
    )
    promote.add_argument("name", metavar="NAME", help="ModelLineage name")
    promote.add_argument("version", metavar="VERSION", help="recorded version to serve")

    rollback = top.add_parser(
        "rollback",
        parents=[common],
        help="pin status.previousVersion (the operator rolls back)",
    )
    rollback.add_argument("name", metavar="NAME", help="ModelLineage name")
    return parser


def _audit_parsers(actions: Any, common: argparse.ArgumentParser) -> None:
    endpoint = argparse.ArgumentParser(add_help=False)
    endpoint.add_argument(
        "--s3-endpoint", metavar="URL", help="reach storage here instead of the Secret's"
    )
    provenance = actions.add_parser(
        "provenance",
        parents=[common, endpoint],
        help="print a version's build provenance (in-toto SLSA v1) and check its signature",
    )
    provenance.add_argument("name", metavar="NAME", help="ModelLineage name")
    provenance.add_argument("version", metavar="VERSION", help="recorded version")
    history = actions.add_parser(
        "history",
        parents=[common, endpoint],
        help="what served when (the hash-chained serving log); exit 1 if tampered with",
    )
    history.add_argument("name", metavar="NAME", help="ModelLineage name")
    history.add_argument(
        "--at", metavar="TIME", type=_time, help="only the version serving at TIME (ISO 8601)"
    )


def _time(text: str) -> dt.datetime:
    try:
        return parse_time(text, what="--at")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--at: ")) from None


def run(args: argparse.Namespace, console: commands.Console) -> int:
    options = KubeOptions(args.kubeconfig, args.context, args.namespace)
    if args.command == "promote":
        return commands.promote(options, console, args.name, args.version)
    if args.command == "rollback":
        return commands.rollback(options, console, args.name)
    if args.action == "tree":
        return commands.lineage_tree(options, console, args.name, ascii_only=args.ascii)
    if args.action == "provenance":
        return auditcmds.lineage_provenance(
            options, console, args.name, args.version, args.s3_endpoint
        )
    if args.action == "history":
        return auditcmds.lineage_history(options, console, args.name, args.at, args.s3_endpoint)
    if args.action == "curves":
        return commands.lineage_curves(options, console, args.name, args.versions,
                                       output=args.output, s3_endpoint=args.s3_endpoint)
    if args.action == "graph":
        return commands.lineage_graph(
            options, console, args.name, fmt=args.format, output=args.output
        )
    return commands.lineage_verify(
        options,
        console,
        args.name,
        args.version,
        manifests_only=args.manifests_only,
        s3_endpoint=args.s3_endpoint,
    )


def main(argv: Sequence[str] | None = None) -> int:
    prog = program_name(sys.argv[0])
    args = build_parser(prog).parse_args(argv)
    console = commands.Console(
        out=sys.stdout,
        err=sys.stderr,
        prog=prog,
        progress=Progress(None if args.quiet else sys.stderr, prefix=prog),
    )
    if args.command == "lineage" and args.action == "tree" and not args.ascii:
        args.ascii = not _can_encode(sys.stdout, "├─│└")
    try:
        return run(args, console)
    except CliError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader (`| head`) left; stop quietly, and keep Python's exit-time flush of
        # stdout from raising again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_ERROR


def _can_encode(stream: object, text: str) -> bool:
    encoding = getattr(stream, "encoding", None) or "ascii"
    try:
        text.encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return False
    return True
