"""Cutting the review corpus into the demo's holdout and weekly windows."""

from __future__ import annotations

import json

import pytest

from warmstart.demo.data import (
    Example,
    WindowSizes,
    cut_windows,
    invert_labels,
    load_corpus,
    parse_corpus,
    to_jsonl,
)
from warmstart.demo.errors import DemoError

SIZES = WindowSizes(holdout=5, train=4, validation=2, eval=3, mislabelled_train=4,
                    mislabelled_validation=2)


def corpus(count: int) -> list[Example]:
    return [Example(f"review {i}", "positive" if i % 3 else "negative") for i in range(count)]


def test_parse_corpus_maps_categories_drops_plots_and_duplicates() -> None:
    text = (
        "category,text,movie_name\n"
        "fresh,\"A  joy\n from start to end.\",a\n"
        "rotten,Dull.,b\n"
        "plot,\"Two friends travel west.\",c\n"
        "fresh,A joy from start to end.,d\n"
        "rotten,,e\n"
    )
    assert parse_corpus(text) == [
        Example("A joy from start to end.", "positive"),
        Example("Dull.", "negative"),
    ]


def test_windows_are_disjoint_sized_and_named_as_the_examples_expect() -> None:
    files = cut_windows(corpus(100), SIZES, weeks=2)
    assert sorted(files) == sorted([
        "holdout.jsonl", "week0/eval.jsonl",
        "week1/train.jsonl", "week1/validation.jsonl", "week1/eval.jsonl",
        "week2/train.jsonl", "week2/validation.jsonl", "week2/eval.jsonl",
        "week3/train.jsonl", "week3/validation.jsonl",
    ])
    assert len(files["holdout.jsonl"]) == 5
    assert len(files["week2/train.jsonl"]) == 4
    assert len(files["week3/validation.jsonl"]) == 2
    texts = [e.text for examples in files.values() for e in examples]
    assert len(texts) == len(set(texts)) == SIZES.total(2)


def test_windows_are_the_same_on_every_run_and_change_with_the_seed() -> None:
    data = corpus(100)
    assert cut_windows(data, SIZES, 2) == cut_windows(list(data), SIZES, 2)
    assert cut_windows(data, SIZES, 2, seed=1) != cut_windows(data, SIZES, 2, seed=2)


def test_the_mislabelled_window_has_every_label_swapped() -> None:
    data = corpus(100)
    files = cut_windows(data, SIZES, weeks=1)
    truth = {e.text: e.label for e in data}
    bad = files["week2/train.jsonl"] + files["week2/validation.jsonl"]
    assert bad and all(e.label != truth[e.text] for e in bad)
    assert all(e.label == truth[e.text] for e in files["week1/train.jsonl"])


def test_too_small_a_corpus_is_refused_with_the_numbers() -> None:
    with pytest.raises(DemoError, match=r"need 32 snippets; the corpus has 10"):
        cut_windows(corpus(10), SIZES, weeks=2)


def test_invert_labels() -> None:
    assert invert_labels([Example("a", "positive"), Example("b", "negative")]) == [
        Example("a", "negative"), Example("b", "positive")]


def test_jsonl_has_the_fields_the_example_jobs_name() -> None:
    body = to_jsonl([Example("Très bien", "positive")]).decode()
    assert body.endswith("\n")
    assert json.loads(body) == {"text": "Très bien", "label": "positive"}


def test_the_installed_corpus_is_big_enough_for_the_full_demo() -> None:
    from warmstart.demo.plan import FULL, WEEKS

    examples = load_corpus()
    assert len(examples) > 10_000
    assert {e.label for e in examples} == {"positive", "negative"}
    assert FULL.sizes.total(WEEKS) <= len(examples)
