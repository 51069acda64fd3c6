"""Command line: ``train``, ``publish-base``, ``serve`` and ``verify``.

Heavy imports (torch, transformers) happen inside the subcommands, after the process
environment points every cache at the work directory and forces offline mode: hence the
function-level imports below.
"""

# ruff: noqa: PLC0415

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from warmstart_trainer.environment import prepare_process_environment, resolve_workdir
from warmstart_trainer.errors import (
    EXIT_FAILED,
    EXIT_INVALID_INPUT,
    EXIT_OK,
    EXIT_REFUSED,
    InvalidInputError,
    TrainerError,
)
from warmstart_trainer.logs import configure_logging
from warmstart_trainer.termination import write_termination_message

log = logging.getLogger("warmstart_trainer")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="warmstart_trainer", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="run one training job from a JSON spec")
    train.add_argument("--spec", required=True, type=Path, help="training spec (JSON)")
    train.add_argument("--device", help="torch device (default: cuda if available, else cpu)")
    train.add_argument(
        "--progress-interval", type=float, default=10.0, help="seconds between progress lines"
    )

    publish = commands.add_parser(
        "publish-base", help="publish a local Hugging Face checkpoint as a lineage's version 0"
    )
    publish.add_argument("--dir", required=True, type=Path, help="local checkpoint directory")
    publish.add_argument("--uri", required=True, help="s3://bucket/prefix/<version>/")
    publish.add_argument("--lineage", required=True, help="lineage (model family) name")
    publish.add_argument(
        "--labels", default="", help="comma-separated class names, only if the head is trained"
    )

    serve = commands.add_parser("serve", help="serve a version over the Open Inference Protocol")
    serve.add_argument("--uri", required=True, help="the version's URI")
    serve.add_argument("--digest", help="expected manifestDigest (sha256:...)")
    serve.add_argument(
        "--host",
        default=os.environ.get("POD_IP") or "127.0.0.1",
        help="address to listen on (default: $POD_IP, else 127.0.0.1)",
    )
    serve.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8080")))
    serve.add_argument("--model-name", default=os.environ.get("MODEL_NAME", "model"))
    serve.add_argument("--device", help="torch device (default: cuda if available, else cpu)")

    verify = commands.add_parser("verify", help="walk a version's lineage hash chain")
    verify.add_argument("--uri", required=True)
    verify.add_argument("--digest", required=True, help="expected manifestDigest (sha256:...)")
    verify.add_argument("--manifests-only", action="store_true", help="skip hashing files")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    configure_logging()
    workdir = resolve_workdir()
    prepare_process_environment(workdir)
    try:
        if args.command == "train":
            return _train(args, workdir)
        if args.command == "publish-base":
            return _publish_base(args)
        if args.command == "serve":
            return _serve(args, workdir)
        return _verify(args)
    except KeyboardInterrupt:
        return EXIT_FAILED


def _fail(exc: Exception, code: int, *, terminate: bool) -> int:
    message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    print(f"error: {message}", file=sys.stderr)
    if terminate:
        write_termination_message({"result": "Failed", "exitCode": code, "error": message})
    return code


def _train(args: argparse.Namespace, workdir: Path) -> int:
    from warmstart import storage
    from warmstart.trainspec import SpecError, parse_spec_text

    try:
        text = args.spec.read_text(encoding="utf-8")
    except OSError as exc:
        return _fail(
            InvalidInputError(f"--spec {args.spec}: {exc.strerror}"),
            EXIT_INVALID_INPUT,
            terminate=True,
        )
    try:
        spec = parse_spec_text(text)
    except SpecError as exc:
        return _fail(Exception(f"invalid spec: {exc}"), EXIT_INVALID_INPUT, terminate=True)

    import torch

    from warmstart_trainer.train import run_train

    try:
        outcome = run_train(
            spec,
            storage.Storage.from_env(),
            workdir,
            device=torch.device(args.device) if args.device else None,
            progress_interval_s=args.progress_interval,
        )
    except TrainerError as exc:
        return _fail(exc, exc.exit_code, terminate=True)
    except storage.StorageError as exc:
        return _fail(exc, EXIT_FAILED, terminate=True)
    except Exception as exc:  # a bug, not bad input: retryable, traceback in the log only
        log.exception("training failed unexpectedly")
        return _fail(RuntimeError(f"unexpected {type(exc).__name__}: {exc}"), EXIT_FAILED,
                     terminate=True)
    summary = {"result": "Succeeded", **outcome.summary()}
    write_termination_message(summary)
    print(json.dumps(summary, sort_keys=True))
    return EXIT_OK


def _publish_base(args: argparse.Namespace) -> int:
    from warmstart import storage
    from warmstart.record import TASK_SEQUENCE_CLASSIFICATION
    from warmstart_trainer.publish import publish_base
    from warmstart_trainer.versions import software_versions

    labels = tuple(label.strip() for label in args.labels.split(",") if label.strip())
    try:
        manifest, digest = publish_base(
            storage.Storage.from_env(),
            args.dir,
            args.uri,
            lineage=args.lineage,
            task=TASK_SEQUENCE_CLASSIFICATION,
            labels=labels,
            software=software_versions(),
        )
    except TrainerError as exc:
        return _fail(exc, exc.exit_code, terminate=False)
    except storage.StorageError as exc:
        return _fail(exc, EXIT_FAILED, terminate=False)
    log.info("published %s with %d files", manifest.version, len(manifest.files))
    print(digest)
    return EXIT_OK


def _serve(args: argparse.Namespace, workdir: Path) -> int:
    # The settings first, the server (and torch) after: a bad setting fails in milliseconds.
    from warmstart_trainer.serving_settings import ServerSettings

    try:  # batching and size limits come from the environment and are checked here
        settings = ServerSettings(
            uri=args.uri,
            expected_digest=args.digest,
            host=args.host,
            port=args.port,
            model_name=args.model_name,
            workdir=workdir,
            device=args.device,
        )
    except ValueError as exc:
        return _fail(InvalidInputError(str(exc)), EXIT_INVALID_INPUT, terminate=True)
    from warmstart_trainer.server import run_server

    run_server(settings)
    return EXIT_OK


def _verify(args: argparse.Namespace) -> int:
    from warmstart import record, storage

    try:
        links = record.verify_chain(
            storage.Storage.from_env(), args.uri, args.digest, check_files=not args.manifests_only
        )
    except record.RecordError as exc:
        return _fail(exc, EXIT_REFUSED, terminate=False)
    except storage.StorageError as exc:
        return _fail(exc, EXIT_FAILED, terminate=False)
    for link in links:
        print(f"{link.version}\t{link.manifest_digest}\t{link.uri}")
    return EXIT_OK
