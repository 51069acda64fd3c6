"""A prediction request over the Open Inference Protocol (v2) the model server speaks: its
body and the parsed answer (workloads.predict_via_service sends it from a pod)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from warmstart.demo.errors import DemoError

SAMPLES = (
    "A warm, funny and beautifully acted film that earns every one of its tears.",
    "Tedious, predictable and at least forty minutes too long.",
    "The plot is thin, but the performances carry it.",
)


@dataclass(frozen=True)
class Prediction:
    text: str
    label: str
    confidence: float


def request_body(texts: tuple[str, ...]) -> dict[str, Any]:
    return {
        "inputs": [
            {"name": "text", "shape": [len(texts)], "datatype": "BYTES", "data": list(texts)}
        ]
    }


def parse_response(texts: tuple[str, ...], body: dict[str, Any]) -> tuple[str, list[Prediction]]:
    """(model version, one prediction per text) from an infer response."""
    outputs = {o.get("name"): o for o in body.get("outputs") or []}
    labels = (outputs.get("label") or {}).get("data")
    probabilities = outputs.get("probabilities") or {}
    shape, flat = probabilities.get("shape"), probabilities.get("data")
    if not isinstance(labels, list) or len(labels) != len(texts) or not shape or not flat:
        raise DemoError(f"unexpected answer from the model server: {json.dumps(body)[:300]}")
    width = int(shape[1])
    rows = [flat[i * width : (i + 1) * width] for i in range(len(texts))]
    predictions = [
        Prediction(text, str(label), float(max(row)))
        for text, label, row in zip(texts, labels, rows, strict=True)
    ]
    return str(body.get("model_version")), predictions
