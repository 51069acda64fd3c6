"""Reading labelled data; errors name file and row; batches are padded dynamically."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from warmstart_trainer.data import (
    EncodedSet,
    LabelledSet,
    collate,
    epoch_order,
    read_labelled_file,
    split_validation,
)
from warmstart_trainer.errors import DataError
from warmstart_trainer.evaluate import macro_f1

LABELS = ("negative", "positive")


def read(path: Path) -> LabelledSet:
    return read_labelled_file(
        path, source=f"s3://b/{path.name}", text_field="text", label_field="label", labels=LABELS
    )


def test_jsonl_and_csv_read_the_same_examples(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text(
        '{"text": "great film", "label": "positive"}\n\n{"text": "dull", "label": "negative"}\n'
    )
    (tmp_path / "a.csv").write_text(
        'id,text,label\n1,great film,positive\n2,"dull",negative\n', encoding="utf-8"
    )
    assert read(tmp_path / "a.jsonl").examples == read(tmp_path / "a.csv").examples
    assert [e.label for e in read(tmp_path / "a.csv").examples] == [1, 0]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("e.jsonl", "", r"s3://b/e\.jsonl: no examples"),
        ("e.csv", "text,label\n", r"s3://b/e\.csv: no examples"),
        (
            "u.jsonl",
            '{"text":"a","label":"positive"}\n{"text":"b","label":"meh"}\n',
            r"s3://b/u\.jsonl: row 2: unknown label 'meh'",
        ),
        (
            "m.jsonl",
            '{"text":"a","label":"positive"}\n{"text": "b", \n',
            r"u?m\.jsonl: row 2: not valid JSON",
        ),
        ("n.jsonl", '{"text":"a","label":1}\n', r"row 1: field 'label' must be a class name"),
        ("t.jsonl", '{"body":"a","label":"positive"}\n', r"row 1: missing text field 'text'"),
        ("w.jsonl", '{"text":"  ","label":"positive"}\n', r"row 1: field 'text' must be non-empty"),
        ("h.csv", "body,label\na,positive\n", r"h\.csv: header lacks column\(s\) \['text'\]"),
        ("x.csv", "text,label\na,positive,extra\n", r"x\.csv: row 1: more cells than header"),
        ("q.csv", 'text,label\n"a,positive\n', r"q\.csv: row \d+: malformed CSV"),
        ("f.txt", "a\n", r"unsupported format '\.txt'"),
    ],
)
def test_bad_data_names_file_and_row(tmp_path: Path, name: str, content: str, message: str) -> None:
    (tmp_path / name).write_text(content)
    with pytest.raises(DataError, match=message):
        read(tmp_path / name)


def test_parquet_without_pyarrow_is_a_clear_error(tmp_path: Path) -> None:
    try:
        import pyarrow  # type: ignore[import-not-found,unused-ignore]  # noqa: F401
    except ImportError:
        (tmp_path / "d.parquet").write_bytes(b"PAR1")
        with pytest.raises(DataError, match="needs pyarrow"):
            read(tmp_path / "d.parquet")
    else:
        pytest.skip("pyarrow is installed")


def test_validation_split_is_seeded_and_disjoint(tmp_path: Path) -> None:
    rows = "".join(f'{{"text": "t{i}", "label": "positive"}}\n' for i in range(50))
    (tmp_path / "d.jsonl").write_text(rows)
    data = read(tmp_path / "d.jsonl")
    train_a, val_a = split_validation(data, 0.2, seed=1)
    _, val_b = split_validation(data, 0.2, seed=1)
    _, val_c = split_validation(data, 0.2, seed=2)
    assert val_a == val_b and len(val_a) == 10 and len(train_a) == 40
    assert val_a.examples != val_c.examples
    assert not {e.text for e in train_a.examples} & {e.text for e in val_a.examples}
    with pytest.raises(DataError, match="too few"):
        split_validation(LabelledSet("s", data.examples[:2]), 0.1, seed=1)


def test_batches_pad_to_their_own_longest_row() -> None:
    data = EncodedSet("s", ((2, 5, 3), (2, 6, 7, 8, 9, 3), (2, 3)), (0, 1, 0))
    batch = collate(data, [0, 2], pad_token_id=0)
    assert batch.input_ids.tolist() == [[2, 5, 3], [2, 3, 0]]
    assert batch.attention_mask.tolist() == [[1, 1, 1], [1, 1, 0]]
    assert collate(data, [0, 1], pad_token_id=0).input_ids.shape == (2, 6)


def test_epoch_order_is_a_function_of_seed_and_epoch() -> None:
    assert epoch_order(20, seed=3, epoch=1) == epoch_order(20, seed=3, epoch=1)
    assert epoch_order(20, seed=3, epoch=1) != epoch_order(20, seed=3, epoch=2)
    assert sorted(epoch_order(20, seed=3, epoch=1)) == list(range(20))


def test_macro_f1_matches_a_hand_computed_value() -> None:
    predictions = torch.tensor([0, 0, 1, 1, 1])
    targets = torch.tensor([0, 1, 1, 1, 0])
    # class 0: tp 1, predicted 2, actual 2 -> 0.5; class 1: tp 2, predicted 3, actual 3 -> 2/3
    assert macro_f1(predictions, targets, 2) == pytest.approx((0.5 + 2 / 3) / 2)
