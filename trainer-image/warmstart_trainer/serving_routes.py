"""HTTP handlers of the model server: health, metadata, inference and metrics.

Every route of the Open Inference Protocol exists plain and per version
(``/v2/models/{name}/versions/{version}/...``); a version other than the loaded one is a 404.
Errors answer ``{"error": "..."}`` with the status the protocol gives: 400 for a request
that does not fit the model, 404 for an unknown model or version, 413 past the request size
limit, 503 before the model is ready or while the batching queue is full.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

import numpy as np
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from warmstart_trainer import __version__
from warmstart_trainer.batcher import QueueFullError
from warmstart_trainer.oip_codec import (
    EXTENSIONS,
    HEADER_LENGTH,
    INPUT_NAME,
    LABEL_OUTPUT,
    PROBABILITIES_OUTPUT,
    ProtocolError,
    encode_infer_response,
    header_length,
    parse_infer_request,
)
from warmstart_trainer.serving_model import LoadedModel
from warmstart_trainer.serving_state import STATE_KEY, ServerState

log = logging.getLogger(__name__)

T = TypeVar("T")

# Below these sizes decoding or encoding takes a few microseconds, less than the hop to a
# worker thread would; above them it moves off the event loop.
_INLINE_BODY_BYTES = 16 * 1024
_INLINE_TEXTS = 32
# Most HTTP clients accept gzip by default; compressing a small answer costs more CPU than
# the bytes it saves.
_COMPRESS_BYTES = 4096


def error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


async def live(request: web.Request) -> web.Response:
    return web.json_response({"live": True})


async def ready(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    if state.ready:
        return web.json_response({"ready": True})
    return web.json_response({"ready": False, "reason": state.failure or "loading"}, status=503)


async def server_metadata(request: web.Request) -> web.Response:
    return web.json_response(
        {"name": "warmstart", "version": __version__, "extensions": list(EXTENSIONS)}
    )


def _model_or_error(request: web.Request) -> LoadedModel | web.Response:
    state = request.app[STATE_KEY]
    name = request.match_info["name"]
    if name != state.settings.model_name:
        return error(404, f"unknown model {name!r}")
    if state.loaded is None:
        return error(503, f"model {name!r} is not ready: {state.failure or 'loading'}")
    version = request.match_info.get("version")
    if version is not None and version != state.loaded.version:
        return error(
            404, f"unknown version {version!r} of model {name!r} (serving {state.loaded.version})"
        )
    return state.loaded


async def model_metadata(request: web.Request) -> web.Response:
    found = _model_or_error(request)
    if isinstance(found, web.Response):
        return found
    state = request.app[STATE_KEY]
    return web.json_response(
        {
            "name": state.settings.model_name,
            "versions": [found.version],
            "platform": "pytorch",
            "inputs": [{"name": INPUT_NAME, "datatype": "BYTES", "shape": [-1]}],
            "outputs": [
                {"name": LABEL_OUTPUT, "datatype": "BYTES", "shape": [-1]},
                {
                    "name": PROBABILITIES_OUTPUT,
                    "datatype": "FP32",
                    "shape": [-1, len(found.labels)],
                },
            ],
            "parameters": {"labels": list(found.labels), "manifestDigest": found.manifest_digest},
        }
    )


async def model_ready(request: web.Request) -> web.Response:
    found = _model_or_error(request)
    if isinstance(found, web.Response):
        return found
    return web.json_response({"name": request.match_info["name"], "ready": True})


async def _off_loop(state: ServerState, inline: bool, work: Callable[[], T]) -> T:
    if inline:
        return work()
    return await asyncio.get_running_loop().run_in_executor(state.codec_executor, work)


def _too_large(size: int | None, limit: int) -> web.Response:
    got = f"{size} bytes" if size is not None else "more"
    # Closed afterwards: the rest of the body is never read, so the connection cannot be reused.
    return error(
        413, f"request body of {got} exceeds the limit of {limit} bytes", {"Connection": "close"}
    )


async def infer(request: web.Request) -> web.Response:
    found = _model_or_error(request)
    if isinstance(found, web.Response):
        return found
    state = request.app[STATE_KEY]
    limit = state.settings.max_request_bytes
    if request.content_length is not None and request.content_length > limit:
        return _too_large(request.content_length, limit)
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return _too_large(None, limit)
    try:
        json_length = header_length(request.headers.get(HEADER_LENGTH), len(body))
        parse = partial(
            parse_infer_request, body, json_length, max_texts=state.settings.max_request_texts
        )
        parsed = await _off_loop(state, len(body) <= _INLINE_BODY_BYTES, parse)
    except ProtocolError as exc:
        return error(400, str(exc))
    try:
        rows = await state.batcher.submit(parsed.texts)
    except QueueFullError as exc:
        return error(503, str(exc), {"Retry-After": "1"})
    except Exception as exc:  # a torch error inside the batch: this request failed, not the server
        log.exception("inference failed for a batch holding %d texts", len(parsed.texts))
        first_line = str(exc).splitlines()[0] if str(exc) else ""
        return error(500, f"inference failed: {type(exc).__name__}: {first_line}")
    encode = partial(
        encode_infer_response,
        model_name=state.settings.model_name,
        model_version=found.version,
        request=parsed,
        labels=found.labels,
        probabilities=np.stack(rows),
    )
    payload, headers = await _off_loop(state, len(parsed.texts) <= _INLINE_TEXTS, encode)
    response = web.Response(body=payload, headers=headers)
    if len(payload) >= _COMPRESS_BYTES and "Accept-Encoding" in request.headers:
        response.enable_compression()  # what tritonclient's response compression asks for
    return response


async def metrics(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    return web.Response(
        body=generate_latest(state.metrics.registry),
        headers={"Content-Type": CONTENT_TYPE_LATEST},
    )


@web.middleware
async def errors_and_counts(request: web.Request, handler: Any) -> web.StreamResponse:
    """Counts every answer; aiohttp's own errors (no route, wrong method) answer in JSON."""
    route = request.match_info.route.resource
    name = route.canonical if route is not None else "unmatched"
    try:
        response: web.StreamResponse = await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            request.app[STATE_KEY].metrics.requests.labels(name, str(exc.status)).inc()
            raise
        allow = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        response = error(exc.status, f"{exc.reason}: {request.method} {request.path}", allow)
    request.app[STATE_KEY].metrics.requests.labels(name, str(response.status)).inc()
    return response


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v2", server_metadata)
    app.router.add_get("/v2/health/live", live)
    app.router.add_get("/v2/health/ready", ready)
    for prefix in ("/v2/models/{name}", "/v2/models/{name}/versions/{version}"):
        app.router.add_get(prefix, model_metadata)
        app.router.add_get(f"{prefix}/ready", model_ready)
        app.router.add_post(f"{prefix}/infer", infer)
    app.router.add_get("/metrics", metrics)
