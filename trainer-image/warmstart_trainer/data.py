"""Labelled text from JSON Lines, CSV or Parquet; tokenised once; batched with dynamic padding.

Every reading error names the file and the 1-based row, because the person who fixes it is
looking at the file, not at the trainer.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from warmstart_trainer.errors import DataError


@dataclass(frozen=True)
class Example:
    text: str
    label: int


@dataclass(frozen=True)
class LabelledSet:
    """Examples read from one source, with the URI they came from (for messages and records)."""

    source: str
    examples: tuple[Example, ...]

    def __len__(self) -> int:
        return len(self.examples)


def read_labelled_file(
    path: Path, *, source: str, text_field: str, label_field: str, labels: Sequence[str]
) -> LabelledSet:
    """Read ``path`` (format from its suffix); ``source`` is the URI used in error messages."""
    label_ids = {name: index for index, name in enumerate(labels)}
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json"):
        rows = _json_rows(path, source)
    elif suffix == ".csv":
        rows = _csv_rows(path, source, (text_field, label_field))
    elif suffix == ".parquet":
        rows = _parquet_rows(path, source)
    else:
        raise DataError(f"{source}: unsupported format {suffix!r}; use .jsonl, .csv or .parquet")
    examples = [
        _example(row, number, source, text_field, label_field, label_ids) for number, row in rows
    ]
    if not examples:
        raise DataError(f"{source}: no examples (the dataset is empty)")
    return LabelledSet(source, tuple(examples))


def _example(
    row: Mapping[str, Any],
    number: int,
    source: str,
    text_field: str,
    label_field: str,
    label_ids: Mapping[str, int],
) -> Example:
    where = f"{source}: row {number}"
    if text_field not in row or row[text_field] is None:
        raise DataError(f"{where}: missing text field {text_field!r}")
    if label_field not in row or row[label_field] is None:
        raise DataError(f"{where}: missing label field {label_field!r}")
    text, label = row[text_field], row[label_field]
    if not isinstance(text, str) or not text.strip():
        raise DataError(f"{where}: field {text_field!r} must be non-empty text")
    if not _is_unicode(text):
        raise DataError(
            f"{where}: field {text_field!r} holds an unpaired surrogate (an escape such as "
            "\\ud800): not valid Unicode text"
        )
    if not isinstance(label, str):
        raise DataError(
            f"{where}: field {label_field!r} must be a class name (string), got {_short(label)}"
        )
    if label not in label_ids:
        raise DataError(
            f"{where}: unknown label {_short(label)}; the lineage's labels are {list(label_ids)}"
        )
    return Example(text=text, label=label_ids[label])


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _short(value: object, limit: int = 80) -> str:
    """A value quoted for a message, cut so one bad row cannot flood the Failed condition."""
    shown = repr(value)
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


def _read_text(path: Path, source: str) -> str:
    """The whole file as text. UTF-8 only (a byte-order mark is allowed); anything else is
    named with its line, because the person fixing it opens the file in an editor."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{source}: cannot read the file: {exc.strerror or exc}") from None
    nul = data.find(b"\0")
    if nul >= 0:
        # Valid UTF-8, yet never text: most often a UTF-16 file without its byte-order mark.
        row = data.count(b"\n", 0, nul) + 1
        raise DataError(
            f"{source}: row {row}: contains a NUL byte; is it UTF-16? save the file as UTF-8"
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise DataError(
            f"{source}: row {line}: not UTF-8 text (byte 0x{data[exc.start]:02x} at column "
            f"{column}); save the file as UTF-8"
        ) from None


def _json_rows(path: Path, source: str) -> Iterator[tuple[int, Mapping[str, Any]]]:
    text = _read_text(path, source)
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(
                f"{source}: row {number}: not valid JSON: {exc.msg} (column {exc.colno})"
            ) from None
        except (ValueError, RecursionError) as exc:
            # Numbers beyond Python's digit limit, nesting deeper than the parser's stack.
            why = "nested too deeply" if isinstance(exc, RecursionError) else _short(str(exc))
            raise DataError(f"{source}: row {number}: not valid JSON: {why}") from None
        if not isinstance(row, dict):
            raise DataError(f"{source}: row {number}: expected a JSON object per line")
        yield number, row


def _csv_rows(
    path: Path, source: str, required: tuple[str, ...]
) -> Iterator[tuple[int, Mapping[str, Any]]]:
    handle = io.StringIO(_read_text(path, source), newline="")
    reader = csv.DictReader(handle, strict=True)
    try:
        header = reader.fieldnames or []
        missing = [name for name in required if name not in header]
        if missing and header:
            raise DataError(
                f"{source}: header lacks column(s) {missing}; it has {_short(header, 200)}"
            )
        for number, row in enumerate(reader, start=1):
            if None in row:  # more cells than header columns
                raise DataError(f"{source}: row {number}: more cells than header columns")
            yield number, row
    except csv.Error as exc:
        raise DataError(f"{source}: row {reader.line_num}: malformed CSV: {exc}") from None


def _parquet_rows(path: Path, source: str) -> Iterator[tuple[int, Mapping[str, Any]]]:
    if importlib.util.find_spec("pyarrow") is None:
        raise DataError(f"{source}: reading Parquet needs pyarrow, which is not installed")
    # Optional: imported only when a Parquet file shows up, so the image may leave it out.
    import pyarrow.parquet as pq  # type: ignore[import-not-found,unused-ignore]  # noqa: PLC0415

    try:
        rows = pq.read_table(path).to_pylist()
    except Exception as exc:  # pyarrow raises many types for one cause: a broken file
        raise DataError(f"{source}: not a readable Parquet file: {_short(str(exc), 200)}") from None
    for number, row in enumerate(rows, start=1):
        if not isinstance(row, dict):
            raise DataError(f"{source}: row {number}: expected a record")
        yield number, row


def split_validation(
    data: LabelledSet, fraction: float, seed: int
) -> tuple[LabelledSet, LabelledSet]:
    """A seeded random split: the same data and seed give the same split on every run."""
    order = list(range(len(data)))
    random.Random(seed).shuffle(order)  # noqa: S311 - a reproducible split, not a secret
    count = round(len(order) * fraction)
    if count < 1 or count >= len(order):
        raise DataError(
            f"{data.source}: {len(order)} examples are too few for validationFraction {fraction}"
        )
    held = sorted(order[:count])
    kept = sorted(order[count:])
    return (
        LabelledSet(data.source, tuple(data.examples[i] for i in kept)),
        LabelledSet(f"{data.source}#validation", tuple(data.examples[i] for i in held)),
    )


# --- tensors -------------------------------------------------------------------------------


@dataclass(frozen=True)
class EncodedSet:
    """Token ids (unpadded, truncated) and labels of one labelled set."""

    source: str
    input_ids: tuple[tuple[int, ...], ...]
    labels: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.labels)


class TextTokenizer:
    """The slice of a Hugging Face tokenizer the trainer uses (keeps typing honest)."""

    def __init__(self, tokenizer: Any, max_length: int) -> None:
        self._tokenizer = tokenizer
        self.max_length = max_length
        pad = tokenizer.pad_token_id
        self.pad_token_id: int = int(pad) if pad is not None else 0

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        encoded = self._tokenizer(
            list(texts), truncation=True, max_length=self.max_length, padding=False
        )
        return [list(ids) for ids in encoded["input_ids"]]


def encode_set(data: LabelledSet, tokenizer: TextTokenizer) -> EncodedSet:
    ids = tokenizer.encode([example.text for example in data.examples])
    return EncodedSet(
        source=data.source,
        input_ids=tuple(tuple(row) for row in ids),
        labels=tuple(example.label for example in data.examples),
    )


@dataclass(frozen=True)
class Batch:
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    labels: torch.Tensor

    @property
    def size(self) -> int:
        return int(self.labels.shape[0])

    def to(self, device: torch.device) -> Batch:
        return Batch(
            self.input_ids.to(device, non_blocking=True),
            self.attention_mask.to(device, non_blocking=True),
            self.labels.to(device, non_blocking=True),
        )


def collate(data: EncodedSet, indices: Sequence[int], pad_token_id: int) -> Batch:
    """Pad to the longest sequence of this batch only (dynamic padding), not to maxSeqLength."""

    rows = [data.input_ids[i] for i in indices]
    width = max(len(row) for row in rows)
    input_ids = torch.full((len(rows), width), pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
    for position, row in enumerate(rows):
        input_ids[position, : len(row)] = torch.tensor(row, dtype=torch.long)
        attention_mask[position, : len(row)] = 1
    labels = torch.tensor([data.labels[i] for i in indices], dtype=torch.long)
    return Batch(input_ids, attention_mask, labels)


def epoch_order(size: int, seed: int, epoch: int) -> list[int]:
    """The shuffled example order of one epoch, a pure function of (seed, epoch).

    Deriving it rather than carrying a generator's state lets a resumed run rebuild the
    interrupted epoch's exact order and skip the batches already done.
    """
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return [int(i) for i in torch.randperm(size, generator=generator)]


def batch_indices(order: Sequence[int], batch_size: int) -> list[list[int]]:
    return [list(order[start : start + batch_size]) for start in range(0, len(order), batch_size)]


def sequential_batches(data: EncodedSet, batch_size: int, pad_token_id: int) -> Iterator[Batch]:
    for indices in batch_indices(range(len(data)), batch_size):
        yield collate(data, indices, pad_token_id)
