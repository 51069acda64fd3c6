"""The run's data: training, validation, holdout and replay sets fetched from storage, with
the dataset references the manifest records."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from warmstart import record, storage
from warmstart.trainspec import TrainSpec
from warmstart_trainer.data import LabelledSet, read_labelled_file, split_validation
from warmstart_trainer.errors import InvalidInputError


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
