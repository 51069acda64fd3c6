"""Versions of the trainer and the libraries that shaped a model, for its manifest."""

from __future__ import annotations

import platform
from importlib import metadata

from warmstart_trainer import __version__

_LIBRARIES = ("torch", "transformers", "tokenizers", "safetensors")


def software_versions() -> dict[str, str]:
    # importlib.metadata, not `import torch`: publish-base runs without loading torch.
    versions = {"warmstart-trainer": __version__, "python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions
