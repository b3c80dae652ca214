"""Prometheus metrics of one app, in a registry of its own (never the global default one)."""

from __future__ import annotations

from collections.abc import Callable

from shortlist._optional import require

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048)


class Metrics:
    """Request counts and latencies per endpoint, stage latencies, batch sizes, queue depth,
    per-model rerank work, the process and the build.

    - `shortlist_requests_total{endpoint,status}`
    - `shortlist_request_duration_seconds{endpoint}` (histogram)
    - `shortlist_stage_duration_seconds{stage}` with stage in retrieve, rerank, queue
    - `shortlist_batch_pairs{model}` and `shortlist_batch_requests{model}` (histograms)
    - `shortlist_queue_depth{model}` (gauge, read when scraped)
    - `shortlist_rerank_duration_seconds{model}` (histogram): one request's reranking on
      the rerank endpoints (Cohere's and TEI's), queueing for a batch included; the rerank
      stage of `/v1/search` is in `shortlist_stage_duration_seconds{stage="rerank"}`
    - `shortlist_rerank_pairs_total{model}`, `shortlist_rerank_tokens_total{model}`: the
      (query, document) pairs reranked and their tokens as shortlist estimates them
      (`serve.batching.estimate_pair_tokens`; a long document's windows count once)
    - `shortlist_build_info{version,models}` (gauge, always 1)
    - `process_*` (CPU seconds, resident memory, open files, start time; Linux) and
      `python_info`, from prometheus_client's process and platform collectors
    """

    def __init__(self) -> None:
        prom = require("prometheus_client", "serve", "the /metrics endpoint")
        self.registry = prom.CollectorRegistry(auto_describe=True)
        self._prom = prom
        prom.ProcessCollector(registry=self.registry)
        prom.PlatformCollector(registry=self.registry)
        self.build_info = prom.Gauge(
            "shortlist_build_info",
            "Always 1; the labels name the shortlist version and the served models.",
            ["version", "models"],
            registry=self.registry,
        )
        self.rerank_latency = prom.Histogram(
            "shortlist_rerank_duration_seconds",
            "Reranking latency of one request by served model (queueing included).",
            ["model"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.rerank_pairs = prom.Counter(
            "shortlist_rerank_pairs",
            "(query, document) pairs reranked by served model.",
            ["model"],
            registry=self.registry,
        )
        self.rerank_tokens = prom.Counter(
            "shortlist_rerank_tokens",
            "Estimated tokens of the (query, document) pairs reranked, by served model.",
            ["model"],
            registry=self.registry,
        )
        self.requests = prom.Counter(
            "shortlist_requests",
            "HTTP requests by endpoint and status code.",
            ["endpoint", "status"],
            registry=self.registry,
        )
        self.latency = prom.Histogram(
            "shortlist_request_duration_seconds",
            "HTTP request latency by endpoint.",
            ["endpoint"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.stage = prom.Histogram(
            "shortlist_stage_duration_seconds",
            "Latency of one stage of a request: retrieve, rerank or queue (waiting for a batch).",
            ["stage"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_pairs = prom.Histogram(
            "shortlist_batch_pairs",
            "Pairs per model batch.",
            ["model"],
            buckets=_BATCH_BUCKETS,
            registry=self.registry,
        )
        self.batch_requests = prom.Histogram(
            "shortlist_batch_requests",
            "Requests sharing one model batch.",
            ["model"],
            buckets=_BATCH_BUCKETS,
            registry=self.registry,
        )
        self.queue_depth = prom.Gauge(
            "shortlist_queue_depth",
            "Scoring jobs waiting for a batch.",
            ["model"],
            registry=self.registry,
        )

    def set_build_info(self, version: str, models: list[str]) -> None:
        self.build_info.labels(version=version, models=",".join(models)).set(1)

    def observe_rerank(self, model: str, seconds: float, pairs: int, tokens: int) -> None:
        """One request's reranking on `model`: its latency, pairs and estimated tokens."""
        self.rerank_latency.labels(model=model).observe(seconds)
        self.rerank_pairs.labels(model=model).inc(pairs)
        self.rerank_tokens.labels(model=model).inc(tokens)

    def watch_queue(self, model: str, depth: Callable[[], int]) -> None:
        self.queue_depth.labels(model=model).set_function(lambda: float(depth()))

    def batch_observer(self, model: str) -> Callable[[int, int, float], None]:
        pairs = self.batch_pairs.labels(model=model)
        requests = self.batch_requests.labels(model=model)

        def observe(n_pairs: int, n_jobs: int, seconds: float) -> None:
            pairs.observe(n_pairs)
            requests.observe(n_jobs)

        return observe

    def queue_observer(self) -> Callable[[float], None]:
        return self.stage.labels(stage="queue").observe

    def render(self) -> tuple[bytes, str]:
        return self._prom.generate_latest(self.registry), self._prom.CONTENT_TYPE_LATEST
