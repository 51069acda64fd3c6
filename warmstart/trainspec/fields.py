"""Validation helpers of the training spec: the error type, field checks, typed readers."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any, TypeVar

_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
_URI_RE = re.compile(r"^(s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]/.*|file:///.+)$")
_DATA_SUFFIXES = (".jsonl", ".json", ".csv", ".parquet")


class SpecError(ValueError):
    """An invalid training spec. ``field`` is the JSON path of the offending field."""

    def __init__(self, field_path: str, reason: str) -> None:
        super().__init__(f"{field_path}: {reason}" if field_path else reason)
        self.field = field_path
        self.reason = reason

    def under(self, prefix: str) -> SpecError:
        """The same error, with the field path seen from an enclosing object."""
        return SpecError(f"{prefix}.{self.field}" if self.field else prefix, self.reason)


def check_uri(field_path: str, value: str, *, prefix: bool) -> None:
    if not _URI_RE.match(value):
        raise SpecError(field_path, f"{value!r} is not an s3://bucket/key or file:/// URI")
    if prefix is False and value.endswith("/"):
        raise SpecError(field_path, f"{value!r} names a prefix, not an object")


def check_dataset_uri(field_path: str, value: str) -> None:
    check_uri(field_path, value, prefix=False)
    if not value.lower().endswith(_DATA_SUFFIXES):
        raise SpecError(field_path, f"{value!r}: want a file ending in {', '.join(_DATA_SUFFIXES)}")


def check_name(field_path: str, value: str) -> None:
    if len(value) > 63 or not _NAME_RE.match(value):
        raise SpecError(field_path, f"{value!r} is not a lowercase name (a-z, 0-9, '-', '.')")


def check_positive(field_path: str, value: float) -> None:
    if not math.isfinite(value) or value <= 0:
        raise SpecError(field_path, f"must be > 0, got {value}")

_T = TypeVar("_T")


class Fields:
    """Typed, path-aware access to one JSON object; unknown keys are errors (typos fail)."""

    def __init__(self, raw: object, path: str) -> None:
        if not isinstance(raw, dict):
            raise SpecError(path, "expected a JSON object")
        self._raw: dict[str, Any] = raw
        self._path = path
        self._used: set[str] = set()

    def _at(self, key: str) -> str:
        return f"{self._path}.{key}" if self._path else key

    def _take(self, key: str, required: bool) -> Any:
        self._used.add(key)
        if key not in self._raw or self._raw[key] is None:
            if required:
                raise SpecError(self._at(key), "is required")
            return None
        return self._raw[key]

    def string(self, key: str, *, required: bool = False) -> str | None:
        value = self._take(key, required)
        if value is not None and (not isinstance(value, str) or not value):
            raise SpecError(self._at(key), "must be a non-empty string")
        return value

    def required_string(self, key: str) -> str:
        value = self.string(key, required=True)
        assert value is not None
        return value

    def integer(self, key: str) -> int | None:
        value = self._take(key, False)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise SpecError(self._at(key), f"must be an integer, got {value!r}")
        return value

    def number(self, key: str) -> float | None:
        value = self._take(key, False)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise SpecError(self._at(key), f"must be a number, got {value!r}")
        return float(value) if value is not None else None

    def boolean(self, key: str) -> bool | None:
        value = self._take(key, False)
        if value is not None and not isinstance(value, bool):
            raise SpecError(self._at(key), f"must be true or false, got {value!r}")
        return value

    def numbers(self, key: str) -> tuple[float, ...] | None:
        value = self._take(key, False)
        if value is None:
            return None
        if not isinstance(value, list) or not all(
            isinstance(item, int | float) and not isinstance(item, bool) for item in value
        ):
            raise SpecError(self._at(key), "must be a list of numbers")
        return tuple(float(item) for item in value)

    def strings(self, key: str) -> tuple[str, ...] | None:
        value = self._take(key, False)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise SpecError(self._at(key), "must be a list of strings")
        return tuple(value)

    def child(self, key: str, *, required: bool = False) -> Fields | None:
        value = self._take(key, required)
        return None if value is None else Fields(value, self._at(key))

    def build(self, cls: Callable[..., _T], **values: Any) -> _T:
        """Construct ``cls`` from the non-None ``values``; check for unknown keys first."""
        unknown = sorted(set(self._raw) - self._used)
        if unknown:
            raise SpecError(self._at(unknown[0]), "unknown field")
        try:
            return cls(**{key: value for key, value in values.items() if value is not None})
        except SpecError as exc:
            raise exc.under(self._path) if self._path else exc from None


def check_rate(field_path: str, value: float) -> None:
    check_positive(field_path, value)
    if value > 1:
        raise SpecError(field_path, f"must be <= 1, got {value}")
