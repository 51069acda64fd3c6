"""Every unreadable input is a DataError naming the file and row (exit 2, no retry), never
an unhandled exception: broken JSON, wrong encoding, wrong schema, random and truncated
bytes, and a parent without safetensors weights."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from warmstart_trainer.data import LabelledSet, read_labelled_file
from warmstart_trainer.errors import EXIT_INVALID_INPUT, DataError, InvalidInputError
from warmstart_trainer.parentcheck import loading_parent, require_safetensors

LABELS = ("negative", "positive")
SUFFIXES = (".jsonl", ".json", ".csv")
GOOD_JSONL = (
    '{"text": "a fine film", "label": "positive"}\n'
    '{"text": "dull and long", "label": "negative"}\n'
    '{"text": "loved it", "label": "positive"}\n'
)


def read(path: Path) -> LabelledSet:
    return read_labelled_file(
        path, source=f"s3://b/{path.name}", text_field="text", label_field="label", labels=LABELS
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        # The file: a broken line, then bytes that are not UTF-8.
        (b'{"text": "ok", "label": "positive"}\n{"text": "broken\n',
         r"s3://b/d\.jsonl: row 2: not valid JSON: Unterminated string"),
        (b'{"text": "ok", "label": "positive"}\n{"text": "caf\xe9", "label": "positive"}\n',
         r"s3://b/d\.jsonl: row 2: not UTF-8 text \(byte 0xe9 at column 14\)"),
        (b"\xff\xfe{", r"row 1: not UTF-8 text \(byte 0xff at column 1\)"),
        (b'{"text": "x", "label": "positive"}\n' + b"[" * 100_000 + b"\n",
         r"row 2: not valid JSON: nested too deeply"),
        (b'{"text": "x", "label": ' + b"9" * 5000 + b"}\n", r"row 1: not valid JSON: "),
        (b'{"text": "\\ud800 bad", "label": "positive"}\n', r"row 1: .*unpaired surrogate"),
        (b'["text", "label"]\n', r"row 1: expected a JSON object per line"),
        (b'{"text": "x", "label": ["positive"]}\n', r"row 1: field 'label' must be a class"),
        (b'{"text": "x", "label": "' + b"z" * 5000 + b'"}\n',
         r"row 1: unknown label 'z+\.\.\.; the lineage"),
        (b"\n\n   \n", r"no examples"),
    ],
)
def test_malformed_json_lines_name_file_and_row(tmp_path: Path, content: bytes,
                                                message: str) -> None:
    path = tmp_path / "d.jsonl"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message) as caught:
        read(path)
    assert caught.value.exit_code == EXIT_INVALID_INPUT
    assert len(str(caught.value)) < 400  # one bad row cannot flood the Failed condition


def test_a_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + GOOD_JSONL.encode())
    assert len(read(path)) == 3


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"text,label\nok,positive\ncaf\xe9,positive\n", r"d\.csv: row 3: not UTF-8 text"),
        (b'text,label\n"unterminated,positive\n', r"d\.csv: row \d+: malformed CSV"),
        (b"text,label\nnul\x00here,positive\n", r"d\.csv: row 2: contains a NUL byte"),
        ("text,label\nutf16,positive\n".encode("utf-16-le"), r"row 1: contains a NUL byte"),
        (b"text,label\n" + b"x" * 200_000 + b",positive\n", r"d\.csv: row \d+: malformed CSV"),
        (b"text\nonly text\n", r"header lacks column\(s\) \['label'\]"),
        (b"text,label\nfine\n", r"row 1: missing label field 'label'"),
    ],
)
def test_malformed_csv_names_file_and_row(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "d.csv"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        read(path)


def test_an_unreadable_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"s3://b/missing\.jsonl: cannot read the file"):
        read(tmp_path / "missing.jsonl")


def test_a_broken_parquet_file_is_named(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    path = tmp_path / "d.parquet"
    path.write_bytes(b"PAR1 not really parquet PAR1")
    with pytest.raises(DataError, match=r"d\.parquet: not a readable Parquet file"):
        read(path)


# -- property-based: nothing a file can hold escapes as anything but DataError -----------

def _read_bytes(tmp_path: Path, suffix: str, content: bytes) -> None:
    path = tmp_path / f"fuzz{suffix}"
    path.write_bytes(content)
    try:
        data = read(path)
    except DataError as exc:
        assert str(exc).startswith(f"s3://b/fuzz{suffix}: "), exc
        return
    assert len(data) >= 1
    assert all(e.label in (0, 1) and e.text.strip() for e in data.examples)


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(suffix=st.sampled_from(SUFFIXES), content=st.binary(max_size=400))
def test_random_bytes_never_raise_anything_but_data_error(tmp_path: Path, suffix: str,
                                                          content: bytes) -> None:
    _read_bytes(tmp_path, suffix, content)


_json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
    | st.sampled_from(LABELS),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(("text", "label", "x")) | st.text(max_size=5), inner, max_size=4),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(_json_value, max_size=6))
def test_random_json_rows_never_raise_anything_but_data_error(tmp_path: Path,
                                                              rows: list[object]) -> None:
    text = "".join(json.dumps(row) + "\n" for row in rows)
    _read_bytes(tmp_path, ".jsonl", text.encode())


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(min_value=0, max_value=len(GOOD_JSONL.encode()) - 1),
       suffix=st.sampled_from((".jsonl", ".csv")))
def test_truncated_files_never_raise_anything_but_data_error(tmp_path: Path, cut: int,
                                                             suffix: str) -> None:
    if suffix == ".csv":
        rows = [json.loads(line) for line in GOOD_JSONL.splitlines()]
        path = tmp_path / "whole.csv"
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=["text", "label"])
            writer.writeheader()
            writer.writerows(rows)
        whole = path.read_bytes()
    else:
        whole = GOOD_JSONL.encode()
    _read_bytes(tmp_path, suffix, whole[: cut % len(whole)])


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cells=st.lists(st.lists(st.text(max_size=10), max_size=4), max_size=5))
def test_random_csv_cells_never_raise_anything_but_data_error(
        tmp_path: Path, cells: list[list[str]]) -> None:
    path = tmp_path / "cells.csv"
    with path.open("w", newline="", encoding="utf-8", errors="surrogatepass") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(cells)
    _read_bytes(tmp_path, ".csv", path.read_bytes())


# -- the parent ---------------------------------------------------------------------------

def test_a_parent_without_safetensors_is_invalid_input() -> None:
    names = ("config.json", "tokenizer.json", "vocab.txt")
    with pytest.raises(InvalidInputError, match=r"parent v1 at s3://b/v1/: no \.safetensors") \
            as caught:
        require_safetensors(names, "parent v1 at s3://b/v1/", cold_start=False)
    assert caught.value.exit_code == EXIT_INVALID_INPUT
    # A cold start needs the architecture only.
    require_safetensors(names, "parent v1", cold_start=True)
    require_safetensors(("config.json", "model.safetensors"), "parent v1", cold_start=False)


@pytest.mark.parametrize("error", [OSError("no file named model.safetensors\nsecond line"),
                                   ValueError("Unrecognized model in config.json"),
                                   KeyError("model_type")])
def test_a_parent_transformers_cannot_load_is_one_line_of_invalid_input(
        error: Exception) -> None:
    with pytest.raises(InvalidInputError, match=r"^parent v1: cannot be loaded as a model: "
                                                r"[^\n]+$"), loading_parent("parent v1"):
        raise error


def test_other_errors_pass_through_loading_parent() -> None:
    with pytest.raises(RuntimeError), loading_parent("parent v1"):
        raise RuntimeError("a bug")
