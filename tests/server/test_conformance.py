"""OIP v2 conformance, driven by Triton's reference client against a real server process.

Every endpoint is exercised plain and per version, inference in JSON, binary and mixed
modes; the error cases check the status code and the protocol's ``{"error": ...}`` body.
"""

from __future__ import annotations

import json
import struct
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest
import tritonclient.http as triton  # type: ignore[import-untyped]
from tritonclient.utils import InferenceServerException  # type: ignore[import-untyped]

from tests.server.support import MODEL, VERSION, RunningServer, error_of, request
from tests.trainer.support import LABELS

TEXTS = ["a great film", "an awful plot", "the movie was really quite dull and boring"]


@pytest.fixture
def client(server: RunningServer) -> Any:
    with triton.InferenceServerClient(url=server.url) as client:
        yield client


def text_input(texts: list[str], *, binary: bool, shape: list[int] | None = None) -> Any:
    tensor = triton.InferInput("text", shape or [len(texts)], "BYTES")
    array = np.array(texts, dtype=object).reshape(shape or [len(texts)])
    tensor.set_data_from_numpy(array, binary_data=binary)
    return tensor


def outputs(binary: bool) -> list[Any]:
    return [triton.InferRequestedOutput(name, binary_data=binary)
            for name in ("label", "probabilities")]


def check_answer(result: Any, count: int) -> Any:
    # The client gives bytes for binary BYTES outputs and str for JSON ones.
    labels = [value.decode() if isinstance(value, bytes) else value
              for value in result.as_numpy("label").reshape(-1)]
    probabilities = result.as_numpy("probabilities")
    assert probabilities.dtype == np.float32 and probabilities.shape == (count, len(LABELS))
    assert np.allclose(probabilities.sum(axis=1), 1, atol=1e-5)
    assert labels == [LABELS[i] for i in probabilities.argmax(axis=1)]
    response = result.get_response()
    assert response["model_name"] == MODEL and response["model_version"] == VERSION
    return probabilities


def test_health_and_server_metadata(client: Any) -> None:
    assert client.is_server_live() and client.is_server_ready()
    metadata = client.get_server_metadata()
    assert metadata["name"] == "warmstart" and metadata["version"]
    assert metadata["extensions"] == ["binary_tensor_data"]


@pytest.mark.parametrize("version", ["", VERSION])
def test_model_metadata_and_readiness(client: Any, server: RunningServer, version: str) -> None:
    assert client.is_model_ready(MODEL, version)
    metadata = client.get_model_metadata(MODEL, version)
    assert metadata["name"] == MODEL and metadata["versions"] == [VERSION]
    assert metadata["platform"] == "pytorch"
    assert metadata["inputs"] == [{"name": "text", "datatype": "BYTES", "shape": [-1]}]
    assert metadata["outputs"] == [
        {"name": "label", "datatype": "BYTES", "shape": [-1]},
        {"name": "probabilities", "datatype": "FP32", "shape": [-1, 2]},
    ]
    assert metadata["parameters"] == {"labels": list(LABELS), "manifestDigest": server.digest}


@pytest.mark.parametrize(("binary_in", "binary_out"),
                         [(False, False), (True, True), (True, False), (False, True)])
@pytest.mark.parametrize("version", ["", VERSION])
def test_infer_json_and_binary(client: Any, binary_in: bool, binary_out: bool,
                               version: str) -> None:
    result = client.infer(MODEL, [text_input(TEXTS, binary=binary_in)], model_version=version,
                          outputs=outputs(binary_out), request_id="r-7")
    check_answer(result, len(TEXTS))
    assert result.get_response()["id"] == "r-7"
    binary_outputs = [o for o in result.get_response()["outputs"]
                      if "binary_data_size" in o.get("parameters", {})]
    assert len(binary_outputs) == (2 if binary_out else 0)


def test_the_clients_default_request_is_all_binary(client: Any) -> None:
    # tritonclient's defaults: binary input, no outputs named -> binary_data_output.
    result = client.infer(MODEL, [text_input(TEXTS, binary=True)])
    assert all(o["parameters"]["binary_data_size"] > 0 for o in result.get_response()["outputs"])
    binary = check_answer(result, len(TEXTS))
    plain = check_answer(client.infer(MODEL, [text_input(TEXTS, binary=False)],
                                      outputs=outputs(False)), len(TEXTS))
    assert np.allclose(binary, plain, atol=1e-6)  # JSON rounds to six decimals


def test_one_output_only_and_column_shape(client: Any) -> None:
    result = client.infer(MODEL, [text_input(TEXTS, binary=True, shape=[3, 1])],
                          outputs=[triton.InferRequestedOutput("label")])
    assert [o["name"] for o in result.get_response()["outputs"]] == ["label"]
    assert result.as_numpy("probabilities") is None
    assert len(result.as_numpy("label")) == 3


def test_unicode_and_compression(client: Any) -> None:
    texts = ["ein großartiger Film 🎬", "", "x" * 2000]
    result = client.infer(MODEL, [text_input(texts, binary=True)],
                          request_compression_algorithm="gzip",
                          response_compression_algorithm="gzip")
    check_answer(result, 3)


def test_concurrent_requests_are_batched_with_the_same_answers(
    client: Any, server: RunningServer
) -> None:
    texts = [" ".join(["good"] + ["movie"] * n) for n in range(20)]
    together = check_answer(client.infer(MODEL, [text_input(texts, binary=True)]), 20)

    def one(text: str) -> Any:
        with triton.InferenceServerClient(url=server.url) as own:
            return check_answer(own.infer(MODEL, [text_input([text], binary=True)]), 1)[0]

    with ThreadPoolExecutor(8) as pool:
        alone = np.stack(list(pool.map(one, texts)))
    # Padding to the longest text of a batch must not change any answer.
    assert np.allclose(alone, together, atol=1e-5)
    _, _, body = request("GET", f"{server.base}/metrics")
    metrics = body.decode()
    assert ('warmstart_server_batching_info{instances="2",max_batch_size="8",'
            'max_queue_delay_ms="2",max_queue_size="64"} 1.0') in metrics
    batches = sample(metrics, "warmstart_server_batch_size_count")
    # No forward pass ever held more than 8 texts: the 20-text request was split.
    assert sample(metrics, 'warmstart_server_batch_size_bucket{le="8.0"}') == batches
    assert sample(metrics, "warmstart_server_queue_seconds_count") >= 21
    classified = sample(metrics, "warmstart_server_inference_texts_total")
    assert sample(metrics, "warmstart_server_batch_size_sum") == classified >= 40


def sample(metrics: str, name: str) -> float:
    """The value of one sample in Prometheus' text format."""
    (line,) = [line for line in metrics.splitlines() if line.startswith(name + " ")]
    return float(line.rsplit(" ", 1)[1])


# --- errors -------------------------------------------------------------------------------


def raised(call: Any, *args: Any, **kwargs: Any) -> InferenceServerException:
    with pytest.raises(InferenceServerException) as caught:
        call(*args, **kwargs)
    return caught.value


def test_unknown_model_and_version(client: Any) -> None:
    assert not client.is_model_ready("nope")
    assert not client.is_model_ready(MODEL, "v9")
    error = raised(client.get_model_metadata, "nope")
    assert error.status() == "404" and "unknown model 'nope'" in error.message()
    error = raised(client.infer, MODEL, [text_input(TEXTS, binary=True)], model_version="v9")
    assert error.status() == "404" and "unknown version 'v9'" in error.message()
    error = raised(client.infer, "nope", [text_input(TEXTS, binary=False)])
    assert error.status() == "404"


def test_wrong_datatype(client: Any) -> None:
    for binary in (False, True):
        tensor = triton.InferInput("text", [2], "FP32")
        tensor.set_data_from_numpy(np.array([1.0, 2.0], dtype=np.float32), binary_data=binary)
        error = raised(client.infer, MODEL, [tensor])
        assert error.status() == "400" and "expected 'BYTES'" in error.message()


def test_wrong_shape_and_wrong_input_name(client: Any) -> None:
    tensor = triton.InferInput("text", [2, 2], "BYTES")
    tensor.set_data_from_numpy(np.array([["a", "b"], ["c", "d"]], dtype=object))
    error = raised(client.infer, MODEL, [tensor])
    assert error.status() == "400" and "expected [n] or [n, 1]" in error.message()
    tensor = triton.InferInput("words", [1], "BYTES")
    tensor.set_data_from_numpy(np.array(["a"], dtype=object))
    error = raised(client.infer, MODEL, [tensor])
    assert error.status() == "400" and "exactly one input, 'text'" in error.message()
    error = raised(client.infer, MODEL, [text_input(TEXTS, binary=True)],
                   outputs=[triton.InferRequestedOutput("logits")])
    assert error.status() == "400" and "unknown output 'logits'" in error.message()


def test_oversized_body_is_413(client: Any, server: RunningServer) -> None:
    texts = ["word " * 20_000] * 4  # 400 kB: past the test server's 256 KiB
    error = raised(client.infer, MODEL, [text_input(texts, binary=True)])
    assert error.status() == "413" and "exceeds the limit of 262144 bytes" in error.message()
    # Without a Content-Length too (chunked): aiohttp's own limit, answered the same way.
    status, _, body = request("POST", f"{server.base}/v2/models/{MODEL}/infer",
                              iter([b"{" + b" " * 300_000 + b"}"]),  # type: ignore[arg-type]
                              {"Content-Type": "application/json"})
    assert status == 413 and "exceeds the limit" in error_of(body)
    assert client.is_server_ready()  # and the server goes on


def binary_body(texts: list[str], *, size_delta: int = 0) -> tuple[bytes, int]:
    data = b"".join(struct.pack("<I", len(t.encode())) + t.encode() for t in texts)
    header = json.dumps({"inputs": [{
        "name": "text", "datatype": "BYTES", "shape": [len(texts)],
        "parameters": {"binary_data_size": len(data) + size_delta}}]}).encode()
    return header + data, len(header)


@pytest.mark.parametrize(
    ("header", "size_delta", "cut", "message"),
    [
        ("abc", 0, 0, "is not an integer"),
        ("100000", 0, 0, "is outside the body"),
        ("0", 0, 0, "is outside the body"),
        (None, 0, 0, "valid JSON"),  # binary body without the header
        ("json", 3, 0, "add up to"),
        ("json", 0, 2, "add up to"),
        ("json", -2, 2, "cut short"),
        ("json-1", 0, 0, "not valid JSON"),
    ],
)
def test_malformed_binary_requests_are_400(
    server: RunningServer, header: str | None, size_delta: int, cut: int, message: str
) -> None:
    body, json_length = binary_body(["good film", "bad"], size_delta=size_delta)
    body = body[: len(body) - cut]
    headers = {"Content-Type": "application/octet-stream"}
    if header is not None:
        value = {"json": str(json_length), "json-1": str(json_length - 1)}.get(header, header)
        headers["Inference-Header-Content-Length"] = value
    status, _, answer = request("POST", f"{server.base}/v2/models/{MODEL}/infer", body, headers)
    assert status == 400 and message in error_of(answer), answer


def test_non_utf8_text_is_400(server: RunningServer) -> None:
    data = struct.pack("<I", 2) + b"\xff\xfe"
    header = json.dumps({"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1],
                                     "parameters": {"binary_data_size": len(data)}}]}).encode()
    status, _, answer = request("POST", f"{server.base}/v2/models/{MODEL}/infer", header + data,
                                {"Inference-Header-Content-Length": str(len(header))})
    assert status == 400 and "not UTF-8" in error_of(answer)


def test_plain_http_errors_are_json(server: RunningServer) -> None:
    status, _, body = request("GET", f"{server.base}/v2/nothing-here")
    assert status == 404 and "Not Found" in error_of(body)
    status, headers, body = request("GET", f"{server.base}/v2/models/{MODEL}/infer")
    assert status == 405 and "POST" in headers["Allow"] and error_of(body)
    status, _, body = request("POST", f"{server.base}/v2/models/{MODEL}/infer", b"{not json",
                              {"Content-Type": "application/json"})
    assert status == 400 and "not valid JSON" in error_of(body)


def test_large_answers_are_compressed_when_asked(server: RunningServer) -> None:
    import gzip

    body = json.dumps({"inputs": [{"name": "text", "datatype": "BYTES", "shape": [200],
                                   "data": ["a good film"] * 200}]}).encode()
    url = f"{server.base}/v2/models/{MODEL}/infer"
    status, headers, answer = request("POST", url, body, {"Accept-Encoding": "gzip"})
    assert status == 200 and headers["Content-Encoding"] == "gzip"
    assert len(json.loads(gzip.decompress(answer))["outputs"][0]["data"]) == 200
    status, headers, answer = request("POST", url, body)
    assert status == 200 and "Content-Encoding" not in headers
    assert len(json.loads(answer)["outputs"][1]["data"]) == 400
