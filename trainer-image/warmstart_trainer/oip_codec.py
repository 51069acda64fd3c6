"""Inference request and response bodies of the Open Inference Protocol (KServe v2).

The model takes one input, ``text`` (``BYTES``, shape ``[n]`` or ``[n, 1]``), and answers
``label`` (``BYTES``, ``[n]``) and ``probabilities`` (``FP32``, ``[n, classes]``, row-major).

Both bodies come as plain JSON or with the binary tensor data extension (the default of
Triton's ``tritonclient``): the JSON inference header comes first, its length in the HTTP
header ``Inference-Header-Content-Length``, and the raw tensors follow it in the order of the
tensors that carry a ``binary_data_size`` parameter. ``BYTES`` elements are each a 4-byte
little-endian length and that many bytes; ``FP32`` is little-endian IEEE 754, row-major. An
output is sent in binary when its request entry has ``"binary_data": true``, or, lacking
that parameter, when the request has ``"binary_data_output": true``.

Pure functions: no HTTP server, no model; every refusal is a ``ProtocolError`` (HTTP 400).
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

INPUT_NAME = "text"
LABEL_OUTPUT = "label"
PROBABILITIES_OUTPUT = "probabilities"
OUTPUT_NAMES = (LABEL_OUTPUT, PROBABILITIES_OUTPUT)
HEADER_LENGTH = "Inference-Header-Content-Length"
# What /v2 lists: the optional parts of the protocol this server speaks.
EXTENSIONS = ("binary_tensor_data",)

_LENGTH = struct.Struct("<I")


class ProtocolError(ValueError):
    """The request does not follow the protocol or does not fit the model (HTTP 400)."""


@dataclass(frozen=True)
class RequestedOutput:
    name: str
    binary: bool


@dataclass(frozen=True)
class InferRequest:
    texts: list[str]
    outputs: tuple[RequestedOutput, ...]
    request_id: str | None = None


def header_length(value: str | None, body_size: int) -> int | None:
    """The JSON header's length from ``Inference-Header-Content-Length`` (None: all JSON)."""
    if value is None:
        return None
    try:
        length = int(value.strip())
    except ValueError:
        raise ProtocolError(f"{HEADER_LENGTH} {value!r} is not an integer") from None
    if not 0 < length <= body_size:
        raise ProtocolError(
            f"{HEADER_LENGTH} {length} is outside the body of {body_size} bytes"
        )
    return length


def parse_infer_request(body: bytes, json_length: int | None, *, max_texts: int) -> InferRequest:
    """The texts and wanted outputs of an inference request body."""
    header_bytes = body if json_length is None else body[:json_length]
    binary = b"" if json_length is None else body[json_length:]
    what = "request body" if json_length is None else "inference header"
    try:
        header = json.loads(header_bytes)
    except (ValueError, UnicodeDecodeError):
        raise ProtocolError(f"{what} is not valid JSON") from None
    except RecursionError:
        # The decoder recurses per nesting level: a body of 100k '[' must be a 400, not a 500.
        raise ProtocolError(f"{what} is nested too deeply") from None
    if not isinstance(header, dict):
        raise ProtocolError("the inference request must be a JSON object")
    inputs = header.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise ProtocolError("the inference request needs an 'inputs' list")
    tensors = [_tensor(entry, "input") for entry in inputs]
    sizes = [_binary_size(tensor) for tensor in tensors]
    if json_length is not None and sum(s or 0 for s in sizes) != len(binary):
        raise ProtocolError(
            f"the inputs' binary_data_size add up to {sum(s or 0 for s in sizes)} bytes, "
            f"but {len(binary)} bytes follow the inference header"
        )
    if json_length is None and any(s is not None for s in sizes):
        raise ProtocolError(f"binary_data_size given without the {HEADER_LENGTH} header")
    names = [tensor["name"] for tensor in tensors]
    unknown = [name for name in names if name != INPUT_NAME]
    if unknown or len(names) != 1:
        raise ProtocolError(
            f"the model takes exactly one input, {INPUT_NAME!r}; got {', '.join(map(repr, names))}"
        )
    texts = _texts(tensors[0], binary if sizes[0] is not None else None, max_texts)
    request_id = header.get("id")
    return InferRequest(
        texts=texts,
        outputs=_requested_outputs(header),
        request_id=request_id if isinstance(request_id, str) else None,
    )


def _tensor(entry: Any, kind: str) -> dict[str, Any]:
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
        raise ProtocolError(f"each {kind} must be an object with a 'name'")
    parameters = entry.get("parameters", {})
    if not isinstance(parameters, dict):
        raise ProtocolError(f"{kind} {entry['name']!r}: 'parameters' must be an object")
    return entry


def _binary_size(tensor: dict[str, Any]) -> int | None:
    size = tensor.get("parameters", {}).get("binary_data_size")
    if size is None:
        return None
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ProtocolError(f"input {tensor['name']!r}: binary_data_size must be an integer >= 0")
    return size


def _texts(tensor: dict[str, Any], binary: bytes | None, max_texts: int) -> list[str]:
    name = tensor["name"]
    datatype = tensor.get("datatype")
    if datatype != "BYTES":
        raise ProtocolError(f"input {name!r}: datatype {datatype!r}, expected 'BYTES'")
    shape = tensor.get("shape")
    if (
        not isinstance(shape, list)
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
        or len(shape) not in (1, 2)
        or (len(shape) == 2 and shape[1] != 1)
    ):
        raise ProtocolError(f"input {name!r}: shape {shape!r}, expected [n] or [n, 1]")
    count = math.prod(shape)
    if count == 0:
        raise ProtocolError(f"input {name!r}: no texts to classify")
    if count > max_texts:
        raise ProtocolError(f"input {name!r}: at most {max_texts} texts per request, got {count}")
    if binary is not None:
        if "data" in tensor:
            raise ProtocolError(f"input {name!r}: both 'data' and binary_data_size given")
        texts = decode_bytes_tensor(binary, name)
    else:
        flat = _flatten(tensor.get("data"))
        if flat is None or not all(isinstance(text, str) for text in flat):
            raise ProtocolError(f"input {name!r}: data must be a list of strings")
        texts = flat
    if len(texts) != count:
        raise ProtocolError(f"input {name!r}: shape {shape} holds {count} texts, got {len(texts)}")
    return texts


# Nested `data` is flattened row-major; no shape this model takes needs more than this.
_MAX_DATA_DEPTH = 8


def _flatten(data: Any, depth: int = 0) -> list[Any] | None:
    if not isinstance(data, list) or depth > _MAX_DATA_DEPTH:
        return None
    flat: list[Any] = []
    for item in data:
        if isinstance(item, list):
            inner = _flatten(item, depth + 1)
            if inner is None:
                return None
            flat.extend(inner)
        else:
            flat.append(item)
    return flat


def decode_bytes_tensor(data: bytes, name: str = INPUT_NAME) -> list[str]:
    """UTF-8 texts from the binary ``BYTES`` layout (4-byte little-endian length, bytes)."""
    texts: list[str] = []
    offset = 0
    while offset < len(data):
        if offset + _LENGTH.size > len(data):
            raise ProtocolError(f"input {name!r}: binary data ends inside an element's length")
        (size,) = _LENGTH.unpack_from(data, offset)
        offset += _LENGTH.size
        if offset + size > len(data):
            raise ProtocolError(f"input {name!r}: binary element of {size} bytes is cut short")
        try:
            texts.append(data[offset : offset + size].decode("utf-8"))
        except UnicodeDecodeError:
            raise ProtocolError(f"input {name!r}: element {len(texts)} is not UTF-8") from None
        offset += size
    return texts


def encode_bytes_tensor(values: Sequence[str]) -> bytes:
    parts = []
    for value in values:
        encoded = value.encode("utf-8")
        parts.append(_LENGTH.pack(len(encoded)))
        parts.append(encoded)
    return b"".join(parts)


def _requested_outputs(header: dict[str, Any]) -> tuple[RequestedOutput, ...]:
    parameters = header.get("parameters", {})
    if not isinstance(parameters, dict):
        raise ProtocolError("request 'parameters' must be an object")
    default_binary = parameters.get("binary_data_output", False)
    if not isinstance(default_binary, bool):
        raise ProtocolError("binary_data_output must be true or false")
    entries = header.get("outputs")
    if entries is None:
        return tuple(RequestedOutput(name, default_binary) for name in OUTPUT_NAMES)
    if not isinstance(entries, list):
        raise ProtocolError("'outputs' must be a list")
    wanted: list[RequestedOutput] = []
    for entry in entries:
        tensor = _tensor(entry, "output")
        name = tensor["name"]
        if name not in OUTPUT_NAMES:
            raise ProtocolError(
                f"unknown output {name!r}; the model has {', '.join(map(repr, OUTPUT_NAMES))}"
            )
        output_parameters = tensor.get("parameters", {})
        if "classification" in output_parameters:
            raise ProtocolError("the classification extension is not supported")
        binary = output_parameters.get("binary_data", default_binary)
        if not isinstance(binary, bool):
            raise ProtocolError(f"output {name!r}: binary_data must be true or false")
        wanted.append(RequestedOutput(name, binary))
    return tuple(wanted)


def encode_infer_response(
    *,
    model_name: str,
    model_version: str,
    request: InferRequest,
    labels: Sequence[str],
    probabilities: npt.NDArray[np.float32],
) -> tuple[bytes, dict[str, str]]:
    """The response body and its content headers, for probabilities of shape [n, classes]."""
    rows = probabilities.shape[0]
    predicted = [labels[int(i)] for i in probabilities.argmax(axis=1)] if rows else []
    outputs: list[dict[str, Any]] = []
    chunks: list[bytes] = []
    for wanted in request.outputs:
        output: dict[str, Any]
        if wanted.name == LABEL_OUTPUT:
            output = {"name": LABEL_OUTPUT, "datatype": "BYTES", "shape": [rows]}
            raw = encode_bytes_tensor(predicted) if wanted.binary else None
            values: Any = predicted
        else:
            output = {
                "name": PROBABILITIES_OUTPUT,
                "datatype": "FP32",
                "shape": [rows, probabilities.shape[1]],
            }
            little_endian = probabilities.astype("<f4", copy=False)
            raw = little_endian.tobytes() if wanted.binary else None
            # Six decimals: float32 carries about seven, and JSON would print seventeen.
            values = np.round(probabilities.astype(np.float64), 6).ravel().tolist()
        if raw is None:
            output["data"] = values
        else:
            output["parameters"] = {"binary_data_size": len(raw)}
            chunks.append(raw)
        outputs.append(output)
    document: dict[str, Any] = {
        "model_name": model_name,
        "model_version": model_version,
        "outputs": outputs,
    }
    if request.request_id is not None:
        document["id"] = request.request_id
    header = json.dumps(document, separators=(",", ":")).encode()
    if not chunks:
        return header, {"Content-Type": "application/json"}
    return b"".join([header, *chunks]), {
        "Content-Type": "application/octet-stream",
        HEADER_LENGTH: str(len(header)),
    }
