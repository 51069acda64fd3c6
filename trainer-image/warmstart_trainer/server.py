"""The model server: Open Inference Protocol (KServe v2) over aiohttp, plus Prometheus metrics.

Readiness is the contract with the operator's rollout: the server reports ready only after
the version was downloaded, verified against its manifest (and ``--digest`` when given) and
loaded. A version that fails any of that is never served: the server stays up, reports
not-ready with the reason, and the Deployment's rollout stalls so the operator rolls back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from warmstart import record, storage
from warmstart.signing import verify_version_signature
from warmstart_trainer import __version__
from warmstart_trainer.errors import RefusedError, TrainerError
from warmstart_trainer.fetch import fetch_version
from warmstart_trainer.modeling import (
    load_classifier,
    load_tokenizer,
    max_positions,
    move_to,
    pick_device,
    quiet_transformers,
)

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class ServerSettings:
    uri: str
    model_name: str
    workdir: Path
    host: str = "127.0.0.1"
    port: int = 8080
    expected_digest: str | None = None
    device: str | None = None
    max_batch: int = 256
    max_length: int = 512
    retry_initial_s: float = 1.0
    retry_max_s: float = 30.0


@dataclass
class LoadedModel:
    version: str
    manifest_digest: str
    labels: tuple[str, ...]
    model: Any
    tokenizer: Any
    device: torch.device
    max_length: int

    def predict(self, texts: list[str]) -> tuple[list[str], list[list[float]]]:
        encoded = self.tokenizer(
            texts, truncation=True, max_length=self.max_length, padding=True, return_tensors="pt"
        )
        with torch.inference_mode():
            logits = self.model(
                input_ids=encoded["input_ids"].to(self.device),
                attention_mask=encoded["attention_mask"].to(self.device),
            ).logits
            probabilities = torch.softmax(logits.float(), dim=-1).cpu()
        labels = [self.labels[int(i)] for i in probabilities.argmax(dim=-1)]
        return labels, probabilities.tolist()


def load_version(settings: ServerSettings, store: storage.Storage) -> LoadedModel:
    """Download, verify and load the version (blocking; runs in a worker thread)."""
    quiet_transformers()
    fetched = fetch_version(
        store,
        settings.uri,
        settings.workdir / "model",
        expected_digest=settings.expected_digest,
        what="version",
    )
    verify_version_signature(store, fetched.uri, expected_digest=fetched.manifest_digest)
    labels = fetched.manifest.labels
    if not labels:
        raise RefusedError(
            f"version {fetched.manifest.version} has no trained classification head (no labels)"
        )
    device = pick_device(settings.device)
    model = load_classifier(fetched.directory, labels)
    move_to(model, device)
    model.train(False)  # inference mode: dropout off
    tokenizer = load_tokenizer(fetched.directory)
    return LoadedModel(
        version=fetched.manifest.version,
        manifest_digest=fetched.manifest_digest,
        labels=labels,
        model=model,
        tokenizer=tokenizer,
        device=device,
        max_length=min(settings.max_length, max_positions(model)),
    )


class ServerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "warmstart_server_requests",
            "HTTP requests by route and status code",
            ["route", "code"],
            registry=self.registry,
        )
        self.inference_seconds = Histogram(
            "warmstart_server_inference_seconds",
            "Model inference time per request",
            registry=self.registry,
        )
        self.texts = Counter(
            "warmstart_server_inference_texts", "Texts classified", registry=self.registry
        )
        self.ready = Gauge(
            "warmstart_server_ready",
            "1 once the model is verified and loaded",
            registry=self.registry,
        )
        self.load_failures = Counter(
            "warmstart_server_load_failures",
            "Failed attempts to load the model",
            registry=self.registry,
        )
        self.model_info = Gauge(
            "warmstart_server_model_info",
            "The served version (value 1)",
            ["model", "version", "manifest_digest"],
            registry=self.registry,
        )


@dataclass
class ServerState:
    settings: ServerSettings
    store: storage.Storage
    metrics: ServerMetrics = field(default_factory=ServerMetrics)
    loaded: LoadedModel | None = None
    failure: str | None = None
    executor: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=1, thread_name_prefix="model")
    )

    @property
    def ready(self) -> bool:
        return self.loaded is not None


STATE_KEY = web.AppKey("state", ServerState)
LOADER_KEY = web.AppKey("loader", asyncio.Task[None])


class BadRequestError(Exception):
    pass


async def _load_in_background(state: ServerState) -> None:
    """Load once; retry only while storage is unreachable, never after a refusal."""
    loop = asyncio.get_running_loop()
    delay = state.settings.retry_initial_s
    while True:
        try:
            loaded = await loop.run_in_executor(
                state.executor, load_version, state.settings, state.store
            )
        except storage.StorageUnavailableError as exc:
            state.metrics.load_failures.inc()
            state.failure = f"storage unavailable, retrying in {delay:.0f}s: {exc}"
            log.warning("could not fetch version %s: %s", state.settings.uri, state.failure)
            await asyncio.sleep(delay)
            delay = min(state.settings.retry_max_s, delay * 2)
            continue
        except (TrainerError, storage.StorageError, record.RecordError, OSError, ValueError) as exc:
            state.metrics.load_failures.inc()
            state.failure = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            log.error(
                "refused to serve %s: %s; staying not ready", state.settings.uri, state.failure
            )
            return
        except Exception as exc:  # a model that transformers cannot build, a torch error, ...
            state.metrics.load_failures.inc()
            first_line = str(exc).splitlines()[0] if str(exc) else ""
            state.failure = f"loading failed: {type(exc).__name__}: {first_line}"
            log.exception("refused to serve %s; staying not ready", state.settings.uri)
            return
        state.loaded = loaded
        state.failure = None
        state.metrics.ready.set(1)
        state.metrics.model_info.labels(
            state.settings.model_name, loaded.version, loaded.manifest_digest
        ).set(1)
        log.info(
            "loaded version %s (manifest %s) from %s on %s; ready",
            loaded.version,
            loaded.manifest_digest,
            state.settings.uri,
            loaded.device,
        )
        return


# --- handlers --------------------------------------------------------------------------------


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def live(request: web.Request) -> web.Response:
    return web.json_response({"live": True})


async def ready(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    if state.ready:
        return web.json_response({"ready": True})
    return web.json_response({"ready": False, "reason": state.failure or "loading"}, status=503)


async def server_metadata(request: web.Request) -> web.Response:
    return web.json_response({"name": "warmstart", "version": __version__, "extensions": []})


def _model_or_error(request: web.Request) -> LoadedModel | web.Response:
    state = request.app[STATE_KEY]
    name = request.match_info["name"]
    if name != state.settings.model_name:
        return _error(404, f"unknown model {name!r}")
    if state.loaded is None:
        return _error(503, f"model {name!r} is not ready: {state.failure or 'loading'}")
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
            "inputs": [{"name": "text", "datatype": "BYTES", "shape": [-1]}],
            "outputs": [
                {"name": "label", "datatype": "BYTES", "shape": [-1]},
                {"name": "probabilities", "datatype": "FP32", "shape": [-1, len(found.labels)]},
            ],
            "parameters": {"labels": list(found.labels), "manifestDigest": found.manifest_digest},
        }
    )


async def model_ready(request: web.Request) -> web.Response:
    found = _model_or_error(request)
    if isinstance(found, web.Response):
        return found
    return web.json_response({"name": request.match_info["name"], "ready": True})


def parse_texts(body: Any, max_batch: int) -> list[str]:
    """The texts of an inference request's single BYTES input."""
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list):
        raise BadRequestError("request must be a JSON object with an 'inputs' list")
    inputs = body["inputs"]
    if len(inputs) != 1 or not isinstance(inputs[0], dict):
        raise BadRequestError("expected exactly one input (the texts)")
    tensor = inputs[0]
    if tensor.get("datatype") != "BYTES":
        raise BadRequestError(f"input {tensor.get('name')!r}: datatype must be BYTES")
    shape, data = tensor.get("shape"), tensor.get("data")
    if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise BadRequestError("input shape must be a list of non-negative integers")
    flat = _flatten(data)
    if flat is None or not all(isinstance(text, str) for text in flat):
        raise BadRequestError("input data must be a list of strings")
    if (
        math.prod(shape) != len(flat)
        or len(shape) not in (1, 2)
        or (len(shape) == 2 and shape[1] != 1)
    ):
        raise BadRequestError(
            f"input shape {shape} does not match {len(flat)} texts ([n] or [n, 1])"
        )
    if not flat:
        raise BadRequestError("no texts to classify")
    if len(flat) > max_batch:
        raise BadRequestError(f"at most {max_batch} texts per request, got {len(flat)}")
    return flat


def _flatten(data: Any) -> list[Any] | None:
    if not isinstance(data, list):
        return None
    flat: list[Any] = []
    for item in data:
        if isinstance(item, list):
            inner = _flatten(item)
            if inner is None:
                return None
            flat.extend(inner)
        else:
            flat.append(item)
    return flat


async def infer(request: web.Request) -> web.Response:
    found = _model_or_error(request)
    if isinstance(found, web.Response):
        return found
    state = request.app[STATE_KEY]
    try:
        body = await request.json()
    except ValueError:
        return _error(400, "request body is not valid JSON")
    try:
        texts = parse_texts(body, state.settings.max_batch)
    except BadRequestError as exc:
        return _error(400, str(exc))
    requested = {o.get("name") for o in body.get("outputs", []) if isinstance(o, dict)}
    started = time.perf_counter()
    labels, probabilities = await asyncio.get_running_loop().run_in_executor(
        state.executor, found.predict, texts
    )
    state.metrics.inference_seconds.observe(time.perf_counter() - started)
    state.metrics.texts.inc(len(texts))
    outputs = [
        {"name": "label", "datatype": "BYTES", "shape": [len(texts)], "data": labels},
        {
            "name": "probabilities",
            "datatype": "FP32",
            "shape": [len(texts), len(found.labels)],
            "data": [round(p, 6) for row in probabilities for p in row],
        },
    ]
    if requested:
        outputs = [o for o in outputs if o["name"] in requested]
    response: dict[str, Any] = {
        "model_name": state.settings.model_name,
        "model_version": found.version,
        "outputs": outputs,
    }
    if "id" in body:
        response["id"] = body["id"]
    return web.json_response(response)


async def metrics(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    return web.Response(
        body=generate_latest(state.metrics.registry),
        headers={"Content-Type": CONTENT_TYPE_LATEST},
    )


@web.middleware
async def count_requests(request: web.Request, handler: Any) -> web.StreamResponse:
    route = request.match_info.route.resource
    name = route.canonical if route is not None else "unmatched"
    try:
        response: web.StreamResponse = await handler(request)
    except web.HTTPException as exc:
        request.app[STATE_KEY].metrics.requests.labels(name, str(exc.status)).inc()
        raise
    request.app[STATE_KEY].metrics.requests.labels(name, str(response.status)).inc()
    return response


def build_app(settings: ServerSettings, store: storage.Storage) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[count_requests])
    state = ServerState(settings=settings, store=store)
    app[STATE_KEY] = state
    app.router.add_get("/v2", server_metadata)
    app.router.add_get("/v2/health/live", live)
    app.router.add_get("/v2/health/ready", ready)
    app.router.add_get("/v2/models/{name}", model_metadata)
    app.router.add_get("/v2/models/{name}/ready", model_ready)
    app.router.add_post("/v2/models/{name}/infer", infer)
    app.router.add_get("/metrics", metrics)

    async def start_loading(app: web.Application) -> None:
        app[LOADER_KEY] = asyncio.create_task(_load_in_background(state))

    async def stop_loading(app: web.Application) -> None:
        task = app[LOADER_KEY]
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        state.executor.shutdown(wait=False, cancel_futures=True)

    app.on_startup.append(start_loading)
    app.on_cleanup.append(stop_loading)
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
