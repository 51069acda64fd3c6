"""One training run, end to end: the ``train`` subcommand without the CLI around it.

parent (download + verify) -> data -> model (warm or cold) -> loop with progress checkpoints
-> evaluate candidate and parent -> write files -> manifest last -> drop progress checkpoints.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from warmstart import record, storage
from warmstart.trainspec import TrainSpec
from warmstart_trainer.data import (
    EncodedSet,
    LabelledSet,
    TextTokenizer,
    encode_set,
    read_labelled_file,
    split_validation,
)
from warmstart_trainer.errors import InvalidInputError, RefusedError
from warmstart_trainer.evaluate import EvalResult, evaluate
from warmstart_trainer.fetch import fetch_version
from warmstart_trainer.logs import MetricsLog
from warmstart_trainer.modeling import (
    build_random_classifier,
    load_classifier,
    load_tokenizer,
    max_positions,
    move_to,
    pick_device,
    quiet_transformers,
    save_model_dir,
)
from warmstart_trainer.parentcheck import loading_parent, require_safetensors
from warmstart_trainer.progress import Checkpoint
from warmstart_trainer.progress_store import ProgressStore
from warmstart_trainer.publish import commit_version, read_committed, utc_now
from warmstart_trainer.train_loop import LoopSettings, TrainingLoop
from warmstart_trainer.versions import software_versions

log = logging.getLogger(__name__)

METRICS_FILE = "metrics.jsonl"


@dataclass(frozen=True)
class TrainOutcome:
    manifest: record.Manifest
    manifest_digest: str
    uri: str
    already_committed: bool = False

    def summary(self) -> dict[str, Any]:
        """The short JSON for the termination message (kept well under 4 KiB)."""
        manifest = self.manifest
        holdout = manifest.metrics.get("holdout", {})
        training = manifest.training
        return {
            "version": manifest.version,
            "uri": self.uri,
            "manifestDigest": self.manifest_digest,
            "parent": manifest.parent.to_json() if manifest.parent else None,
            "datasetDigest": manifest.dataset_digest,
            "holdout": {"candidate": holdout.get("candidate"), "parent": holdout.get("parent")},
            "training": {
                key: training.get(key)
                for key in (
                    "steps",
                    "bestEpoch",
                    "stoppedEarly",
                    "trainSeconds",
                    "samplesPerSecond",
                )
            },
            "alreadyCommitted": self.already_committed,
        }


def spec_fingerprint(spec: TrainSpec, datasets: tuple[record.DatasetRef, ...] = ()) -> str:
    """Identifies a run: a progress checkpoint is resumed only by a run with the same spec
    and the same data (a file replaced under the same URI starts training over)."""
    data = "\n".join(f"{ref.role} {ref.uri} {ref.sha256}" for ref in datasets)
    return record.sha256_bytes((spec.to_json_text() + data).encode("utf-8"))


@dataclass(frozen=True)
class Datasets:
    train: LabelledSet
    validation: LabelledSet
    holdout: LabelledSet | None
    replays: tuple[LabelledSet, ...]
    refs: tuple[record.DatasetRef, ...]


def _fetch_dataset(
    store: storage.Storage, uri: str, directory: Path, index: int, spec: TrainSpec
) -> tuple[LabelledSet, str]:
    name = uri.rstrip("/").rsplit("/", 1)[-1]
    path = directory / f"{index:02d}-{name}"
    try:
        store.download_file(uri, path)
    except storage.ObjectNotFoundError:
        raise InvalidInputError(f"dataset {uri}: not found") from None
    data = read_labelled_file(
        path,
        source=uri,
        text_field=spec.dataset.text_field,
        label_field=spec.dataset.label_field,
        labels=spec.lineage.labels,
    )
    return data, record.file_sha256(path)


def load_datasets(store: storage.Storage, spec: TrainSpec, directory: Path) -> Datasets:
    directory.mkdir(parents=True, exist_ok=True)
    train, train_sha = _fetch_dataset(store, spec.dataset.train_uri, directory, 0, spec)
    refs = []
    if spec.dataset.validation_uri is not None:
        validation, validation_sha = _fetch_dataset(
            store, spec.dataset.validation_uri, directory, 1, spec
        )
        validation_uri = spec.dataset.validation_uri
    else:
        assert spec.dataset.validation_fraction is not None
        train, validation = split_validation(
            train, spec.dataset.validation_fraction, spec.training.seed
        )
        validation_sha, validation_uri = train_sha, spec.dataset.train_uri
    refs.append(record.DatasetRef("train", spec.dataset.train_uri, train_sha, len(train)))
    refs.append(record.DatasetRef("validation", validation_uri, validation_sha, len(validation)))
    holdout = None
    if spec.evaluation.holdout_uri is not None:
        holdout, sha = _fetch_dataset(store, spec.evaluation.holdout_uri, directory, 2, spec)
        refs.append(record.DatasetRef("holdout", spec.evaluation.holdout_uri, sha, len(holdout)))
    replays = []
    for index, uri in enumerate(spec.evaluation.replay_uris):
        replay, sha = _fetch_dataset(store, uri, directory, 10 + index, spec)
        replays.append(replay)
        refs.append(record.DatasetRef("replay", uri, sha, len(replay)))
    return Datasets(train, validation, holdout, tuple(replays), tuple(refs))


def _committed_outcome(store: storage.Storage, spec: TrainSpec) -> TrainOutcome | None:
    """A version already committed at the output (a pod restarted after its commit)."""
    existing = read_committed(store, spec.output.uri)
    if existing is None:
        return None
    manifest, digest = existing
    parent = manifest.parent
    if (
        manifest.version == spec.version
        and parent is not None
        and parent.manifest_digest == spec.parent.manifest_digest
    ):
        log.info(
            "version %s is already committed at %s; nothing to do", spec.version, spec.output.uri
        )
        return TrainOutcome(manifest, digest, spec.output.uri, already_committed=True)
    raise RefusedError(
        f"output.uri {spec.output.uri} already holds version {manifest.version} with another "
        "parent; refusing to overwrite a committed version"
    )


def run_train(
    spec: TrainSpec,
    store: storage.Storage,
    workdir: Path,
    *,
    device: torch.device | None = None,
    progress_interval_s: float = 10.0,
) -> TrainOutcome:
    quiet_transformers()
    committed = _committed_outcome(store, spec)
    if committed is not None:
        return committed
    device = device or pick_device()
    labels = spec.lineage.labels

    parent = fetch_version(
        store,
        spec.parent.uri,
        workdir / "parent",
        expected_digest=spec.parent.manifest_digest,
        what=f"parent {spec.parent.version}",
    )
    if (
        parent.manifest.has_trained_head
        and parent.manifest.labels != labels
        and not spec.cold_start
    ):
        raise InvalidInputError(
            f"lineage.labels: parent {parent.manifest.version} was trained for "
            f"{list(parent.manifest.labels)}, the spec names {list(labels)}"
        )
    where = f"parent {parent.manifest.version} at {parent.uri}"
    require_safetensors(parent.manifest.file_names, where, cold_start=spec.cold_start)
    datasets = load_datasets(store, spec, workdir / "data")

    with loading_parent(where):
        tokenizer = load_tokenizer(parent.directory)
    # Seed before building the model: a warm start's fresh classification head and a cold
    # start's whole network are drawn from torch's generator.
    _make_deterministic(spec.training.seed, device)
    if spec.cold_start:
        with loading_parent(where):
            model = build_random_classifier(parent.directory, labels, spec.training.seed)
        log.info("built %s with random weights (cold start)", type(model).__name__)
    else:
        with loading_parent(where):
            model = load_classifier(parent.directory, labels)
        log.info(
            "loaded %s from parent %s (warm start)", type(model).__name__, parent.manifest.version
        )
    max_length = min(spec.training.max_seq_length, max_positions(model))
    text_tokenizer = TextTokenizer(tokenizer, max_length)
    train_set = encode_set(datasets.train, text_tokenizer)
    validation_set = encode_set(datasets.validation, text_tokenizer)

    fingerprint = spec_fingerprint(spec, datasets.refs)
    metrics = MetricsLog(workdir / METRICS_FILE)
    metrics.path.unlink(missing_ok=True)
    progress_store = ProgressStore(store, spec.output.uri, workdir / "progress")
    checkpoint = None
    if spec.training.checkpoint_every_steps:
        checkpoint = progress_store.load_latest(fingerprint)
    if checkpoint is not None and checkpoint.metrics_log is not None:
        shutil.copyfile(checkpoint.metrics_log, metrics.path)

    patience, min_delta = spec.early_stopping
    settings = LoopSettings(
        max_epochs=spec.training.max_epochs,
        batch_size=spec.training.batch_size,
        learning_rate=spec.training.learning_rate,
        weight_decay=spec.training.weight_decay,
        warmup_ratio=spec.training.warmup_ratio,
        max_grad_norm=spec.training.max_grad_norm,
        patience=patience,
        min_delta=min_delta,
        seed=spec.training.seed,
        eval_every_steps=spec.training.eval_every_steps,
        checkpoint_every_steps=spec.training.checkpoint_every_steps,
        progress_interval_s=progress_interval_s,
    )

    def save_progress(state: Checkpoint) -> None:
        metrics.write("checkpoint", step=state.progress.step)
        where = progress_store.save(state, metrics.path)
        log.info("saved progress checkpoint at step %d to %s", state.progress.step, where)

    loop = TrainingLoop(
        model,
        train_set,
        validation_set,
        settings,
        pad_token_id=text_tokenizer.pad_token_id,
        num_classes=len(labels),
        device=device,
        metrics=metrics,
        spec_fingerprint=fingerprint,
        on_checkpoint=save_progress,
    )
    if checkpoint is not None:
        loop.restore(checkpoint)
        metrics.write("resume", fromStep=checkpoint.progress.step)
    result = loop.run()

    metric_report = _evaluate_versions(
        candidate=model,
        parent_dir=parent.directory if parent.manifest.has_trained_head else None,
        parent_labels_match=parent.manifest.labels == labels,
        datasets=datasets,
        tokenizer=text_tokenizer,
        num_classes=len(labels),
        device=device,
        batch_size=settings.eval_batch_size,
        labels=labels,
    )
    metrics.write("evaluated", metrics=metric_report)

    output_dir = workdir / "output"
    if output_dir.exists():
        shutil.rmtree(output_dir)
    move_to(model, "cpu")
    names = save_model_dir(model, tokenizer, output_dir)
    shutil.copyfile(metrics.path, output_dir / METRICS_FILE)
    names.append(METRICS_FILE)

    def make_manifest(files: tuple[record.FileEntry, ...]) -> record.Manifest:
        return record.Manifest(
            version=spec.version,
            lineage=spec.lineage.name,
            task=spec.lineage.task,
            labels=labels,
            parent=record.ParentRef(
                version=parent.manifest.version,
                uri=parent.uri,
                manifest_digest=parent.manifest_digest,
            ),
            files=files,
            datasets=datasets.refs,
            metrics=metric_report,
            training={**result.summary(), "coldStart": spec.cold_start, "device": str(device)},
            hyperparameters=_hyperparameters(spec, settings, max_length, device),
            software=software_versions(),
            created_at=utc_now(),
        )

    manifest, digest = commit_version(store, output_dir, spec.output.uri, make_manifest, names,
                                      parameters=spec.to_json())
    try:
        progress_store.clear()
    except storage.StorageError as exc:
        # The version is committed; stale progress files only cost space.
        log.warning(
            "could not delete progress checkpoints under %s: %s", progress_store.prefix, exc
        )
    return TrainOutcome(manifest, digest, spec.output.uri)


def _make_deterministic(seed: int, device: torch.device) -> None:
    torch.manual_seed(seed)
    # warn_only: a few CUDA kernels have no deterministic variant; they warn instead of failing.
    torch.use_deterministic_algorithms(True, warn_only=True)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = False


def _hyperparameters(
    spec: TrainSpec, settings: LoopSettings, max_length: int, device: torch.device
) -> dict[str, Any]:
    bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
    return {
        "coldStart": spec.cold_start,
        "maxEpochs": settings.max_epochs,
        "learningRate": settings.learning_rate,
        "batchSize": settings.batch_size,
        "maxSeqLength": max_length,
        "seed": settings.seed,
        "warmupRatio": settings.warmup_ratio,
        "weightDecay": settings.weight_decay,
        "maxGradNorm": settings.max_grad_norm,
        "earlyStopping": {"patience": settings.patience, "minDelta": settings.min_delta},
        "evalEverySteps": settings.eval_every_steps,
        "checkpointEverySteps": settings.checkpoint_every_steps,
        "validationFraction": spec.dataset.validation_fraction,
        "optimizer": "AdamW",
        "schedule": "linear-warmup-decay",
        "precision": "bf16-autocast" if bf16 else "fp32",
    }


def _evaluate_versions(
    *,
    candidate: torch.nn.Module,
    parent_dir: Path | None,
    parent_labels_match: bool,
    datasets: Datasets,
    tokenizer: TextTokenizer,
    num_classes: int,
    device: torch.device,
    batch_size: int,
    labels: tuple[str, ...],
) -> dict[str, Any]:
    """Candidate and parent on the holdout and each replay set, on the same examples.

    A parent without a trained head for these labels (a base checkpoint) has nothing to
    compare: its metrics are null and the reason is recorded.
    """
    parent_model = None
    if parent_dir is not None and parent_labels_match:
        with loading_parent(f"parent at {parent_dir}"):
            parent_model = load_classifier(parent_dir, labels)
        move_to(parent_model, device)

    def score(model: torch.nn.Module | None, data: EncodedSet) -> dict[str, Any] | None:
        if model is None:
            return None
        result: EvalResult = evaluate(
            model,
            data,
            batch_size=batch_size,
            pad_token_id=tokenizer.pad_token_id,
            num_classes=num_classes,
            device=device,
        )
        return result.to_json()

    move_to(candidate, device)
    holdout = datasets.holdout or datasets.validation
    holdout_set = encode_set(holdout, tokenizer)
    report: dict[str, Any] = {
        "holdout": {
            "uri": holdout.source,
            "fromValidation": datasets.holdout is None,
            "candidate": score(candidate, holdout_set),
            "parent": score(parent_model, holdout_set),
        },
        "replay": [],
        "validation": {"candidate": score(candidate, encode_set(datasets.validation, tokenizer))},
        "parentEvaluated": parent_model is not None,
    }
    if parent_model is None:
        report["parentNotEvaluatedReason"] = (
            "the parent has no classification head trained for these labels"
        )
    for replay in datasets.replays:
        replay_set = encode_set(replay, tokenizer)
        report["replay"].append(
            {
                "uri": replay.source,
                "candidate": score(candidate, replay_set),
                "parent": score(parent_model, replay_set),
            }
        )
    log.info(
        "evaluated candidate%s on holdout %s: %s",
        " and parent" if parent_model is not None else "",
        holdout.source,
        report["holdout"],
    )
    return report
