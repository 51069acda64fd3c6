"""A verified parent that still cannot be trained from is bad input, not a crash.

fetch.py proves the parent's files are the ones its manifest names; it does not prove they
make a model. A parent without safetensors weights, or whose config or tokenizer
transformers cannot read, fails the same way on every retry: exit 2 with the parent named.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from warmstart_trainer.errors import InvalidInputError

WEIGHTS_SUFFIX = ".safetensors"


def require_safetensors(file_names: Sequence[str], where: str, *, cold_start: bool) -> None:
    """A warm start loads the parent's weights, and only safetensors are ever loaded."""
    if cold_start:
        return  # a cold start takes only the architecture (config) and the tokenizer
    if not any(name.endswith(WEIGHTS_SUFFIX) for name in file_names):
        listed = ", ".join(sorted(file_names)[:10]) or "none"
        raise InvalidInputError(
            f"{where}: no {WEIGHTS_SUFFIX} weights among its files ({listed}); a warm start "
            "needs the parent's weights in safetensors format (coldStart: true needs only "
            "config.json and the tokenizer)"
        )


@contextmanager
def loading_parent(where: str) -> Iterator[None]:
    """Turns transformers' errors about an unusable checkpoint directory into one line."""
    try:
        yield
    except (OSError, ValueError, KeyError, TypeError) as exc:
        # OSError: a file transformers needs is missing or unreadable; ValueError/KeyError/
        # TypeError: config.json or a tokenizer file holds something it does not understand.
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise InvalidInputError(f"{where}: cannot be loaded as a model: {first_line}") from None
