"""Kubernetes' camelCase for Python's snake_case names, shared by the API models and the
training spec.

A module of its own, outside `warmstart.api`: importing that package builds every CRD
model, which the trainer (it only needs the spelling) should not pay for at start-up.
"""

from __future__ import annotations

# Kubernetes spells these acronyms in capitals inside camelCase names (trainURI, replayURIs).
_ACRONYMS = {"uri": "URI", "uris": "URIs"}


def camel_alias(snake: str) -> str:
    """`train_uri` -> `trainURI`, `max_seq_length` -> `maxSeqLength`, `uri` -> `uri`."""
    first, *rest = snake.split("_")
    return first + "".join(_ACRONYMS.get(word, word.capitalize()) for word in rest)
