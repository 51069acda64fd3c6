"""The protocol's bodies as pure functions: binary layout, outputs wanted, response encoding."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from warmstart_trainer.oip_codec import (
    InferRequest,
    ProtocolError,
    RequestedOutput,
    decode_bytes_tensor,
    encode_bytes_tensor,
    encode_infer_response,
    header_length,
    parse_infer_request,
)

PROBABILITIES = np.array([[0.25, 0.75], [0.9, 0.1]], dtype=np.float32)


def binary_request(texts: list[str], **extra: object) -> tuple[bytes, int]:
    data = encode_bytes_tensor(texts)
    header = json.dumps({
        "inputs": [{"name": "text", "datatype": "BYTES", "shape": [len(texts)],
                    "parameters": {"binary_data_size": len(data)}}], **extra}).encode()
    return header + data, len(header)


def test_bytes_tensor_round_trip() -> None:
    texts = ["", "a", "großartig 🎬", "x" * 70_000]
    encoded = encode_bytes_tensor(texts)
    assert encoded[:4] == struct.pack("<I", 0) and encoded[4:8] == struct.pack("<I", 1)
    assert decode_bytes_tensor(encoded) == texts
    with pytest.raises(ProtocolError, match="inside an element's length"):
        decode_bytes_tensor(encoded + b"\x01")


def test_binary_request_parses_like_its_json_twin() -> None:
    body, length = binary_request(["good", "bad"], id="x", outputs=[{"name": "label"}])
    parsed = parse_infer_request(body, header_length(str(length), len(body)), max_texts=8)
    assert parsed == InferRequest(["good", "bad"], (RequestedOutput("label", False),), "x")
    plain = json.dumps({"id": "x", "outputs": [{"name": "label"}], "inputs": [
        {"name": "text", "datatype": "BYTES", "shape": [2], "data": ["good", "bad"]}]}).encode()
    assert parse_infer_request(plain, None, max_texts=8) == parsed


@pytest.mark.parametrize(
    ("parameters", "outputs", "expected"),
    [
        ({}, None, [("label", False), ("probabilities", False)]),
        ({"binary_data_output": True}, None, [("label", True), ("probabilities", True)]),
        ({"binary_data_output": True}, [{"name": "probabilities",
                                         "parameters": {"binary_data": False}}],
         [("probabilities", False)]),
        ({}, [{"name": "label", "parameters": {"binary_data": True}}, {"name": "probabilities"}],
         [("label", True), ("probabilities", False)]),
    ],
)
def test_which_outputs_come_in_binary(
    parameters: dict[str, object], outputs: list[object] | None,
    expected: list[tuple[str, bool]],
) -> None:
    document: dict[str, object] = {
        "inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": ["a"]}],
        "parameters": parameters}
    if outputs is not None:
        document["outputs"] = outputs
    parsed = parse_infer_request(json.dumps(document).encode(), None, max_texts=8)
    assert [(o.name, o.binary) for o in parsed.outputs] == expected


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([1], "must be a JSON object"),
        ({"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": ["a"]}] * 2},
         "exactly one input"),
        ({"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": ["a"],
                      "parameters": {"binary_data_size": 4}}]}, "without the"),
        ({"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": ["a"]}],
          "outputs": [{"name": "label", "parameters": {"classification": 2}}]},
         "classification extension is not supported"),
        ({"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": ["a"]}],
          "parameters": {"binary_data_output": "yes"}}, "true or false"),
        ({"inputs": [{"name": "text", "datatype": "BYTES", "shape": [True], "data": ["a"]}]},
         "expected [n] or [n, 1]"),
        ({"inputs": [{"name": "text", "datatype": "BYTES", "shape": [9], "data": ["a"] * 9}]},
         "at most 8 texts"),
    ],
)
def test_refusals_name_the_problem(document: object, message: str) -> None:
    with pytest.raises(ProtocolError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_infer_request(json.dumps(document).encode(), None, max_texts=8)


def test_binary_and_data_together_are_refused() -> None:
    body, length = binary_request(["a"])
    document = json.loads(body[:length])
    document["inputs"][0]["data"] = ["a"]
    header = json.dumps(document).encode()
    with pytest.raises(ProtocolError, match="both 'data' and binary_data_size"):
        parse_infer_request(header + body[length:], len(header), max_texts=8)


def test_json_response() -> None:
    request = InferRequest(["a", "b"], (RequestedOutput("label", False),
                                        RequestedOutput("probabilities", False)), "r1")
    body, headers = encode_infer_response(model_name="m", model_version="v3", request=request,
                                          labels=("neg", "pos"), probabilities=PROBABILITIES)
    assert headers == {"Content-Type": "application/json"}
    assert json.loads(body) == {
        "model_name": "m", "model_version": "v3", "id": "r1",
        "outputs": [
            {"name": "label", "datatype": "BYTES", "shape": [2], "data": ["pos", "neg"]},
            {"name": "probabilities", "datatype": "FP32", "shape": [2, 2],
             "data": [0.25, 0.75, 0.9, 0.1]},
        ],
    }


def test_binary_response_layout() -> None:
    request = InferRequest(["a", "b"], (RequestedOutput("probabilities", True),
                                        RequestedOutput("label", True)))
    body, headers = encode_infer_response(model_name="m", model_version="v3", request=request,
                                          labels=("neg", "pos"), probabilities=PROBABILITIES)
    length = int(headers["Inference-Header-Content-Length"])
    assert headers["Content-Type"] == "application/octet-stream"
    document = json.loads(body[:length])
    sizes = [o["parameters"]["binary_data_size"] for o in document["outputs"]]
    assert sizes == [16, 14] and all("data" not in o for o in document["outputs"])
    raw = body[length:]
    assert len(raw) == sum(sizes)
    assert np.frombuffer(raw[:16], dtype="<f4").tolist() == PROBABILITIES.ravel().tolist()
    assert decode_bytes_tensor(raw[16:]) == ["pos", "neg"]
