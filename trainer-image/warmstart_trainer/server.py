"""The model server: Open Inference Protocol (KServe v2) over aiohttp, plus Prometheus metrics.

Readiness is the contract with the operator's rollout: the server reports ready only after
the version was downloaded, verified against its manifest (and ``--digest`` when given) and
loaded. A version that fails any of that is never served: the server stays up, reports
not-ready with the reason, and the Deployment's rollout stalls so the operator rolls back.

Requests are batched dynamically (``batcher.py``): texts of requests that arrive together
run as one forward pass, bounded by ``WARMSTART_MAX_BATCH_SIZE`` texts and a wait of at most
``WARMSTART_MAX_QUEUE_DELAY_MS``; at most ``WARMSTART_MAX_QUEUE_SIZE`` requests wait, more
are answered 503. The protocol's bodies are in ``oip_codec.py``, the handlers in
``serving_routes.py``, loading in ``serving_model.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiohttp import web

from warmstart import storage
from warmstart_trainer.serving_routes import add_routes, errors_and_counts
from warmstart_trainer.serving_settings import ServerSettings
from warmstart_trainer.serving_state import STATE_KEY, ServerState
from warmstart_trainer.serving_state import load_in_background as _load_in_background

__all__ = ["ServerSettings", "build_app", "run_server"]

log = logging.getLogger(__name__)

LOADER_KEY = web.AppKey("loader", asyncio.Task[None])


def build_app(settings: ServerSettings, store: storage.Storage) -> web.Application:
    # aiohttp refuses bodies past client_max_size itself; the handler turns that into the
    # protocol's JSON 413 (and answers one before reading when Content-Length says so).
    app = web.Application(
        client_max_size=settings.max_request_bytes, middlewares=[errors_and_counts]
    )
    state = ServerState(settings=settings, store=store)
    app[STATE_KEY] = state
    add_routes(app)

    async def start(app: web.Application) -> None:
        state.batcher.start()
        app[LOADER_KEY] = asyncio.create_task(_load_in_background(state))

    async def stop(app: web.Application) -> None:
        task = app[LOADER_KEY]
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await state.batcher.close()
        state.shutdown_executors()

    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    return app


def run_server(settings: ServerSettings, store: storage.Storage | None = None) -> None:
    app = build_app(settings, store or storage.Storage.from_env())
    log.info(
        "serving model %r from %s on http://%s:%d (digest %s)",
        settings.model_name,
        settings.uri,
        settings.host,
        settings.port,
        settings.expected_digest or "not pinned: files are checked against the manifest only",
    )
    web.run_app(app, host=settings.host, port=settings.port, print=None, access_log=None)
