"""Building models and tokenizers from a verified local checkpoint directory.

Loading is locked down: safetensors only, local files only, no remote code. Callers verify
the directory against its manifest first (``fetch.fetch_version``); the pickle check here is
a second line of defence for any directory handed in directly.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import torch
from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PreTrainedModel,
)
from transformers.utils import logging as hf_logging

from warmstart import record
from warmstart_trainer.errors import RefusedError

log = logging.getLogger(__name__)

# Most encoder checkpoints learned positions up to 512; a longer maxSeqLength cannot help.
_FALLBACK_MAX_POSITIONS = 512


def quiet_transformers() -> None:
    """Our own log lines say what was loaded; transformers' progress bars only add noise."""
    hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]


def _refuse_pickle_in(directory: Path) -> None:
    names = [p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file()]
    try:
        record.refuse_pickle(names, where=str(directory))
    except record.PickleFileError as exc:
        raise RefusedError(str(exc)) from None


def _label_maps(labels: Sequence[str]) -> dict[str, Any]:
    return {
        "num_labels": len(labels),
        "id2label": dict(enumerate(labels)),
        "label2id": {name: index for index, name in enumerate(labels)},
    }


def load_tokenizer(directory: Path) -> Any:
    _refuse_pickle_in(directory)
    return AutoTokenizer.from_pretrained(
        str(directory), local_files_only=True, trust_remote_code=False
    )


def load_classifier(directory: Path, labels: Sequence[str]) -> PreTrainedModel:
    """The checkpoint's weights with a sequence-classification head for ``labels``.

    A base checkpoint (e.g. a sentence-transformers encoder) has no head: transformers then
    initialises a fresh one and loads everything else, which is what a warm start wants.
    """
    _refuse_pickle_in(directory)
    model = AutoModelForSequenceClassification.from_pretrained(
        str(directory),
        use_safetensors=True,
        local_files_only=True,
        trust_remote_code=False,
        **_label_maps(labels),
    )
    return cast(PreTrainedModel, model)


def build_random_classifier(directory: Path, labels: Sequence[str], seed: int) -> PreTrainedModel:
    """Same architecture as the checkpoint (its config), freshly initialised weights."""
    _refuse_pickle_in(directory)
    config = AutoConfig.from_pretrained(
        str(directory), local_files_only=True, trust_remote_code=False, **_label_maps(labels)
    )
    # Seeded so two cold starts with the same spec begin from the same weights.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForSequenceClassification.from_config(  # type: ignore[no-untyped-call]
            config, trust_remote_code=False
        )
    return cast(PreTrainedModel, model)


def max_positions(model: PreTrainedModel) -> int:
    value = getattr(model.config, "max_position_embeddings", None)
    return int(value) if isinstance(value, int) and value > 0 else _FALLBACK_MAX_POSITIONS


def move_to(model: torch.nn.Module, device: torch.device | str) -> None:
    """Move in place (``Module.to`` mutates and returns the module itself)."""
    model.to(device)


def snapshot_weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """CPU copies of every weight, safe to keep while training goes on and to save."""
    return {
        name: tensor.detach().to("cpu", copy=True).contiguous()
        for name, tensor in model.state_dict().items()
    }


def restore_weights(model: torch.nn.Module, weights: Mapping[str, torch.Tensor]) -> None:
    model.load_state_dict(dict(weights), strict=True)


def pick_device(requested: str | None = None) -> torch.device:
    if requested:
        return torch.device(requested)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def save_model_dir(model: PreTrainedModel, tokenizer: Any, directory: Path) -> list[str]:
    """Write weights (safetensors), config and tokenizer files; return the relative names."""
    directory.mkdir(parents=True, exist_ok=True)
    # transformers writes safetensors by default (>= 4.35; the only format in 5.x); the
    # pickle check below catches any version that would not.
    model.save_pretrained(str(directory))
    tokenizer.save_pretrained(str(directory))
    names = sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file())
    record.refuse_pickle(names, where=str(directory))
    return names
