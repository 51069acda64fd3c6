"""The served model: download, verify and load a version; classify a batch of texts.

Loading runs in a worker thread and is the server's whole notion of readiness: a version is
served only after its files matched the manifest (and ``--digest`` when given) and, for a
signed lineage, the manifest's signature verified against the trusted keys.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from warmstart import storage
from warmstart.signing import verify_version_signature
from warmstart_trainer.errors import RefusedError
from warmstart_trainer.evaluate import autocast_context
from warmstart_trainer.fetch import fetch_version
from warmstart_trainer.modeling import (
    load_classifier,
    load_tokenizer,
    max_positions,
    move_to,
    pick_device,
    quiet_transformers,
)


@dataclass
class LoadedModel:
    version: str
    manifest_digest: str
    labels: tuple[str, ...]
    model: Any
    tokenizer: Any
    device: torch.device
    max_length: int

    def predict(self, texts: list[str], threads: int = 0) -> npt.NDArray[np.float32]:
        """Class probabilities, shape [len(texts), classes], in the order of ``texts`` (blocking).

        Texts are tokenised once, then run in passes of similar length (``length_groups``):
        one long text no longer pads a whole batch of short ones to its length. ``threads``
        (0: leave as is) sets this thread's intra-op threads for these passes. The passes
        run in the precision the trainer evaluated in (bf16 autocast on a CUDA device that
        supports it, fp32 elsewhere), so the server answers as the version was judged.
        """
        if threads and torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        ids: list[list[int]] = self.tokenizer(
            texts, truncation=True, max_length=self.max_length
        )["input_ids"]
        lengths = [len(row) for row in ids]
        result = np.empty((len(texts), len(self.labels)), dtype=np.float32)
        for group in length_groups(lengths, PASS_OVERHEAD_TOKENS):
            input_ids, attention_mask = self._padded([ids[i] for i in group])
            with torch.inference_mode(), autocast_context(self.device):
                logits = self.model(
                    input_ids=input_ids.to(self.device),
                    attention_mask=attention_mask.to(self.device),
                ).logits
                result[group] = torch.softmax(logits.float(), dim=-1).cpu().numpy()
        return result

    def _padded(self, rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids padded to the longest row, on the tokenizer's padding side, and the mask."""
        width = max(len(row) for row in rows)
        input_ids = np.full((len(rows), width), self.tokenizer.pad_token_id or 0, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        left = self.tokenizer.padding_side == "left"
        for index, row in enumerate(rows):
            where = slice(width - len(row), width) if left else slice(0, len(row))
            input_ids[index, where] = row
            mask[index, where] = 1
        return torch.from_numpy(input_ids), torch.from_numpy(mask)


# The fixed cost of one forward pass (Python, per-layer dispatch, thread hand-offs), in
# padded token positions: splitting a batch pays it once more per pass. all-MiniLM-L6-v2 on
# 2 CPU cores: one text of 16 tokens takes 9.7 ms, each further token position ~0.15 ms, so
# a pass costs about as much as 50-60 token positions.
PASS_OVERHEAD_TOKENS = 64


def length_groups(lengths: Sequence[int], overhead: int) -> list[list[int]]:
    """Indices of ``lengths`` split into passes, shortest first, at the least padded cost.

    A pass of n rows padded to its longest row (length L) costs ``overhead + n * L``; sorted
    by length, the cheapest split into consecutive runs is a small dynamic programme
    (quadratic in the batch size, a few milliseconds at 256 texts).
    """
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    best = [0] * (len(order) + 1)  # best[j]: cheapest cost of the j shortest rows
    cut = [0] * (len(order) + 1)  # where the last pass of that cheapest split starts
    for end in range(1, len(order) + 1):
        width = lengths[order[end - 1]]
        best[end], cut[end] = min(
            (best[start] + overhead + (end - start) * width, start) for start in range(end)
        )
    groups: list[list[int]] = []
    end = len(order)
    while end:
        groups.append(order[cut[end] : end])
        end = cut[end]
    return groups[::-1]


def use_threads(threads: int) -> None:
    """Intra-op threads for every forward pass (0: torch's default, one per core).

    Inter-op threads go down to one: only one pass runs at a time, and the server never uses
    torch's inter-op parallelism (``torch.jit.fork``), so a second pool would only idle.
    """
    if threads > 0:
        torch.set_num_threads(threads)
    # Possible only before the first inter-op work; a second model load in the process (the
    # tests) finds the pool made already.
    with contextlib.suppress(RuntimeError):
        torch.set_num_interop_threads(1)


def load_version(
    uri: str,
    workdir: Path,
    store: storage.Storage,
    *,
    expected_digest: str | None,
    device: str | None,
    max_length: int,
    threads: int = 0,
) -> LoadedModel:
    """Download, verify and load the version (blocking; runs in a worker thread)."""
    quiet_transformers()
    use_threads(threads)
    fetched = fetch_version(
        store, uri, workdir / "model", expected_digest=expected_digest, what="version"
    )
    verify_version_signature(store, fetched.uri, expected_digest=fetched.manifest_digest)
    labels = fetched.manifest.labels
    if not labels:
        raise RefusedError(
            f"version {fetched.manifest.version} has no trained classification head (no labels)"
        )
    chosen = pick_device(device)
    model = load_classifier(fetched.directory, labels)
    move_to(model, chosen)
    model.train(False)  # inference mode: dropout off
    tokenizer = load_tokenizer(fetched.directory)
    return LoadedModel(
        version=fetched.manifest.version,
        manifest_digest=fetched.manifest_digest,
        labels=labels,
        model=model,
        tokenizer=tokenizer,
        device=chosen,
        max_length=min(max_length, max_positions(model)),
    )
