"""The model server's Prometheus metrics, in a registry of its own."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from warmstart_trainer.batcher import BatchingSettings, BatchReport

# Powers of two up to the largest batch a request may ask for.
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
# From "ran at once" to "waited behind several long batches".
_QUEUE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


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
            "Model time per batch (tokenisation and one forward pass)",
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "warmstart_server_batch_size",
            "Texts per forward pass",
            buckets=_BATCH_BUCKETS,
            registry=self.registry,
        )
        self.queue_seconds = Histogram(
            "warmstart_server_queue_seconds",
            "Time a request waited in the batching queue before its batch ran",
            buckets=_QUEUE_BUCKETS,
            registry=self.registry,
        )
        self.queued_requests = Gauge(
            "warmstart_server_queued_requests",
            "Requests waiting for a batch",
            registry=self.registry,
        )
        self.batching = Gauge(
            "warmstart_server_batching_info",
            "The dynamic batcher's settings (value 1)",
            ["max_batch_size", "max_queue_delay_ms", "max_queue_size", "instances"],
            registry=self.registry,
        )
        self.torch_threads = Gauge(
            "warmstart_server_torch_threads",
            "Intra-op threads of each forward pass (WARMSTART_TORCH_THREADS)",
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

    def record_settings(self, settings: BatchingSettings) -> None:
        self.batching.labels(
            str(settings.max_batch_size),
            f"{settings.max_queue_delay_ms:g}",
            str(settings.max_queue_size),
            str(settings.instances),
        ).set(1)

    def record_batch(self, report: BatchReport) -> None:
        self.batch_size.observe(report.size)
        self.inference_seconds.observe(report.run_seconds)
        self.texts.inc(report.size)
        for seconds in report.queue_seconds:
            self.queue_seconds.observe(seconds)
