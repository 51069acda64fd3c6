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
from transformers import PreTrainedModel

from warmstart import record, storage
from warmstart.trainspec import TrainSpec
from warmstart_trainer.comparison import EvalSets, Run, curves, evaluate_versions
from warmstart_trainer.data import EncodedSet, TextTokenizer, encode_set
from warmstart_trainer.datasets import load_datasets
from warmstart_trainer.errors import InvalidInputError, RefusedError
from warmstart_trainer.fetch import FetchedVersion, fetch_version
from warmstart_trainer.hyperparameters import hyperparameters_json, loop_settings
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
from warmstart_trainer.train_loop import TrainingLoop
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
        majority = manifest.evaluation.majority_class
        return {
            "version": manifest.version,
            "uri": self.uri,
            "manifestDigest": self.manifest_digest,
            "parent": manifest.parent.to_json() if manifest.parent else None,
            "comparedWith": (
                manifest.compared_with.to_json() if manifest.compared_with else None
            ),
            "majorityClass": bool(majority and majority.flagged),
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


def _committed_outcome(store: storage.Storage, spec: TrainSpec) -> TrainOutcome | None:
    """A version already committed at the output (a pod restarted after its commit)."""
    existing = read_committed(store, spec.output.uri)
    if existing is None:
        return None
    manifest, digest = existing
    # A cold start names the version it started beside as comparedWith, not as parent.
    started_beside = manifest.parent or manifest.compared_with
    if (
        manifest.version == spec.version
        and started_beside is not None
        and started_beside.manifest_digest == spec.parent.manifest_digest
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

    rates = spec.training.learning_rates_for(cold_start=spec.cold_start)
    # A sweep's runs are not resumed one by one: a preempted sweep starts over.
    resumable = len(rates) == 1
    fingerprint = spec_fingerprint(spec, datasets.refs)
    metrics = MetricsLog(workdir / METRICS_FILE)
    metrics.path.unlink(missing_ok=True)
    progress_store = ProgressStore(store, spec.output.uri, workdir / "progress")
    checkpoint = None
    if resumable and spec.training.checkpoint_every_steps:
        checkpoint = progress_store.load_latest(fingerprint)
    if checkpoint is not None and checkpoint.metrics_log is not None:
        shutil.copyfile(checkpoint.metrics_log, metrics.path)

    def save_progress(state: Checkpoint) -> None:
        metrics.write("checkpoint", step=state.progress.step)
        saved_at = progress_store.save(state, metrics.path)
        log.info("saved progress checkpoint at step %d to %s", state.progress.step, saved_at)

    runs: list[Run] = []
    best: tuple[Run, PreTrainedModel] | None = None
    encoded: tuple[TextTokenizer, EncodedSet, EncodedSet] | None = None
    for rate in rates:
        model = _build_model(spec, parent, device, where)
        if encoded is None:  # every run of a sweep has the same architecture
            text_tokenizer = TextTokenizer(
                tokenizer, min(spec.training.max_seq_length, max_positions(model))
            )
            encoded = (
                text_tokenizer,
                encode_set(datasets.train, text_tokenizer),
                encode_set(datasets.validation, text_tokenizer),
            )
        text_tokenizer, train_set, validation_set = encoded
        settings = loop_settings(
            spec, rate, progress_interval_s=progress_interval_s, checkpoints=resumable
        )
        if len(rates) > 1:
            log.info("sweep: training with learning rate %g (%d of %d)",
                     rate, len(runs) + 1, len(rates))
            metrics.write("sweep", learningRate=rate, index=len(runs))
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
        run = Run(rate, loop.run())
        runs.append(run)
        # Chosen by validation loss only: the holdout and replay sets stay unseen.
        if best is None or _best_loss(run) < _best_loss(best[0]):
            move_to(model, "cpu")  # kept aside while the next rate trains
            best = (run, model)
        else:
            del model
    assert best is not None and encoded is not None
    chosen, model = best
    text_tokenizer = encoded[0]
    settings = loop_settings(
        spec, chosen.learning_rate, progress_interval_s=progress_interval_s, checkpoints=resumable
    )
    if len(rates) > 1:
        log.info("sweep: kept learning rate %g (validation loss %s)",
                 chosen.learning_rate, chosen.result.progress.best_loss)

    metric_report = evaluate_versions(
        candidate=model,
        parent_dir=parent.directory if parent.manifest.has_trained_head else None,
        parent_labels_match=parent.manifest.labels == labels,
        sets=EvalSets(datasets.validation, datasets.holdout, datasets.replays),
        tokenizer=text_tokenizer,
        device=device,
        batch_size=settings.eval_batch_size,
        labels=labels,
    )
    metric_report["curves"] = curves(runs, chosen)
    metrics.write("evaluated", metrics=metric_report)

    output_dir = workdir / "output"
    if output_dir.exists():
        shutil.rmtree(output_dir)
    move_to(model, "cpu")
    names = save_model_dir(model, tokenizer, output_dir)
    shutil.copyfile(metrics.path, output_dir / METRICS_FILE)
    names.append(METRICS_FILE)
    started_from = record.ParentRef(
        version=parent.manifest.version, uri=parent.uri, manifest_digest=parent.manifest_digest
    )
    training = {
        **chosen.result.summary(),
        "coldStart": spec.cold_start,
        "device": str(device),
        "learningRate": chosen.learning_rate,
    }
    if len(runs) > 1:
        training["sweepSeconds"] = round(sum(r.result.progress.train_seconds for r in runs), 3)

    def make_manifest(files: tuple[record.FileEntry, ...]) -> record.Manifest:
        return record.Manifest(
            version=spec.version,
            lineage=spec.lineage.name,
            task=spec.lineage.task,
            labels=labels,
            # A cold start took only the architecture and tokenizer: it names the version it
            # is compared with, and is a root of the hash chain.
            parent=None if spec.cold_start else started_from,
            compared_with=started_from if spec.cold_start else None,
            files=files,
            datasets=datasets.refs,
            metrics=metric_report,
            training=training,
            hyperparameters=hyperparameters_json(
                spec, settings, rates=rates, max_length=text_tokenizer.max_length, device=device
            ),
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


def _best_loss(run: Run) -> float:
    loss = run.result.progress.best_loss
    return float("inf") if loss is None else loss


def _build_model(
    spec: TrainSpec, parent: FetchedVersion, device: torch.device, where: str
) -> PreTrainedModel:
    # Seed before building the model: a warm start's fresh classification head and a cold
    # start's whole network are drawn from torch's generator, the same for every sweep run.
    _make_deterministic(spec.training.seed, device)
    labels = spec.lineage.labels
    with loading_parent(where):
        if spec.cold_start:
            model = build_random_classifier(parent.directory, labels, spec.training.seed)
            log.info("built %s with random weights (cold start)", type(model).__name__)
        else:
            model = load_classifier(parent.directory, labels)
            log.info("loaded %s from parent %s (warm start)",
                     type(model).__name__, parent.manifest.version)
    return model


def _make_deterministic(seed: int, device: torch.device) -> None:
    torch.manual_seed(seed)
    # warn_only: a few CUDA kernels have no deterministic variant; they warn instead of failing.
    torch.use_deterministic_algorithms(True, warn_only=True)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = False
