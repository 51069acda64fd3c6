"""The served model: download, verify and load a version; classify a batch of texts.

Loading runs in a worker thread and is the server's whole notion of readiness: a version is
served only after its files matched the manifest (and ``--digest`` when given) and, for a
signed lineage, the manifest's signature verified against the trusted keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from warmstart import storage
from warmstart.signing import verify_version_signature
from warmstart_trainer.errors import RefusedError
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

    def predict(self, texts: list[str]) -> npt.NDArray[np.float32]:
        """Class probabilities, shape [len(texts), classes]: one forward pass (blocking)."""
        encoded = self.tokenizer(
            texts, truncation=True, max_length=self.max_length, padding=True, return_tensors="pt"
        )
        with torch.inference_mode():
            logits = self.model(
                input_ids=encoded["input_ids"].to(self.device),
                attention_mask=encoded["attention_mask"].to(self.device),
            ).logits
            probabilities = torch.softmax(logits.float(), dim=-1).cpu()
        result: npt.NDArray[np.float32] = probabilities.numpy()
        return result


def load_version(
    uri: str,
    workdir: Path,
    store: storage.Storage,
    *,
    expected_digest: str | None,
    device: str | None,
    max_length: int,
) -> LoadedModel:
    """Download, verify and load the version (blocking; runs in a worker thread)."""
    quiet_transformers()
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
