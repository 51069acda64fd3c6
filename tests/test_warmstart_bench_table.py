"""The warm-vs-cold table from runs saved one seed at a time: one row per method and size,
mean and spread over the seeds, TF-IDF (seedless, in every run) counted once."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from benchmarks.warmstart_bench import Result, merged, table


def result(method: str, seed: int, accuracy: float, majority: bool = False) -> Result:
    return Result(method, 2400, seed, accuracy, accuracy - 0.01, 100 if seed else None,
                  12.0 if seed else None, 60.0, 0.75, accuracy, 1e-4, majority)


def test_runs_saved_per_seed_make_one_table(tmp_path: Path) -> None:
    first, second = tmp_path / "s1.json", tmp_path / "s2-3.json"
    first.write_text(json.dumps([asdict(r) for r in (
        result("warm start", 1, 0.80), result("cold start", 1, 0.60),
        result("tfidf+logreg", 0, 0.70))]))
    second.write_text(json.dumps([asdict(r) for r in (
        result("warm start", 2, 0.82), result("cold start", 2, 0.64, majority=True),
        result("warm start", 3, 0.84), result("cold start", 3, 0.62),
        result("tfidf+logreg", 0, 0.70))]))
    results = merged([first, second])
    assert len(results) == 7
    rows = {line.split(" | ")[0]: line for line in table(results)[2:]}
    assert rows["| warm start"].split(" | ")[2] == "0.820 ± 0.020"
    assert rows["| cold start (majority class in 1/3)"].split(" | ")[2] == "0.620 ± 0.020"
    assert rows["| tfidf+logreg"].split(" | ")[2] == "0.700"  # one run, not two
