"""Property-based tests of the request parser: whatever bytes a client sends, the parser
either returns a request that fits the model or refuses it with a ProtocolError (HTTP 400).
Any other exception would become a 500 and a traceback in the server's log."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from warmstart_trainer.oip_codec import (
    InferRequest,
    ProtocolError,
    decode_bytes_tensor,
    encode_bytes_tensor,
    header_length,
    parse_infer_request,
)

MAX_TEXTS = 8
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                               max_size=4),
    max_leaves=20,
)
# Keys and values the parser looks at, so random documents often get past the first checks.
keys = st.sampled_from(["inputs", "outputs", "parameters", "name", "datatype", "shape", "data",
                        "binary_data_size", "binary_data", "binary_data_output", "id",
                        "classification", "text", "label", "probabilities", "BYTES", "FP32"])
near_protocol = st.recursive(
    st.none() | st.booleans() | st.integers(-2, 10) | keys | st.text(max_size=4),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=5),
    max_leaves=30,
)


def parse(body: bytes, json_length: int | None) -> InferRequest | None:
    try:
        request = parse_infer_request(body, json_length, max_texts=MAX_TEXTS)
    except ProtocolError as refusal:
        assert str(refusal), "a refusal must say why"
        return None
    assert 1 <= len(request.texts) <= MAX_TEXTS
    assert all(isinstance(text, str) for text in request.texts)
    return request


def valid_binary(texts: list[str]) -> tuple[bytes, int]:
    data = encode_bytes_tensor(texts)
    header = json.dumps({
        "inputs": [{"name": "text", "datatype": "BYTES", "shape": [len(texts)],
                    "parameters": {"binary_data_size": len(data)}}],
        "parameters": {"binary_data_output": True}}).encode()
    return header + data, len(header)


@FAST
@given(st.binary(max_size=200))
def test_arbitrary_bytes_are_refused_or_parsed(body: bytes) -> None:
    parse(body, None)
    if body:
        parse(body, len(body) // 2 or None)


@FAST
@given(json_values | near_protocol)
def test_arbitrary_json_documents_are_refused_or_parsed(document: Any) -> None:
    parse(json.dumps(document).encode(), None)


@FAST
@given(st.dictionaries(keys, near_protocol, max_size=4), near_protocol)
def test_documents_shaped_like_requests_are_refused_or_parsed(extra: dict[str, Any],
                                                             inputs: Any) -> None:
    parse(json.dumps({**extra, "inputs": inputs}).encode(), None)
    parse(json.dumps({**extra, "inputs": [inputs]}).encode(), None)


@FAST
@given(st.lists(st.text(max_size=20), min_size=1, max_size=MAX_TEXTS), st.data())
def test_truncated_binary_requests_are_refused_never_misread(texts: list[str],
                                                             data: st.DataObject) -> None:
    body, length = valid_binary(texts)
    request = parse(body, length)
    assert request is not None and request.texts == texts
    cut = data.draw(st.integers(0, len(body) - 1), label="cut")
    assert parse(body[:cut], length if cut >= length else None) is None


@FAST
@given(st.lists(st.text(max_size=20), min_size=1, max_size=MAX_TEXTS), st.data())
def test_corrupted_binary_requests_are_refused_or_parsed(texts: list[str],
                                                         data: st.DataObject) -> None:
    body, length = valid_binary(texts)
    position = data.draw(st.integers(0, len(body) - 1), label="position")
    value = data.draw(st.integers(0, 255), label="value")
    corrupted = body[:position] + bytes([value]) + body[position + 1:]
    parse(corrupted, length)


@FAST
@given(st.binary(max_size=64))
def test_binary_tensors_decode_or_are_refused(data: bytes) -> None:
    try:
        texts = decode_bytes_tensor(data)
    except ProtocolError:
        return
    assert encode_bytes_tensor(texts) == data  # what decodes was a well-formed tensor


@FAST
@given(st.one_of(st.none(), st.text(max_size=12)), st.integers(0, 1000))
def test_the_header_length_is_an_integer_inside_the_body_or_refused(value: str | None,
                                                                    size: int) -> None:
    try:
        length = header_length(value, size)
    except ProtocolError:
        return
    assert length is None or 0 < length <= size


def test_deeply_nested_json_is_refused_not_a_crash() -> None:
    # The JSON decoder and the data flattening both recurse: nesting deeper than the
    # interpreter's stack must be a 400, not a RecursionError (a 500 and a traceback).
    for depth in (900, 5_000, 100_000):
        nested = "[" * depth + '"x"' + "]" * depth
        body = ('{"inputs":[{"name":"text","datatype":"BYTES","shape":[1],"data":'
                + nested + "}]}").encode()
        parse(body, None)
