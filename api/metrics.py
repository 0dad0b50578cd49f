"""The figures behind GET /metrics (api/health.py), via prometheus_client.

Pools report every attempt on an instance (`Metrics.attempt`, the engines' `Observer`): requests by
model, instance and status, tokens generated, time to first token and latency. Queue depth and
active requests are read from the pools when Prometheus scrapes. Each app has its own collector
registry, so several apps in one process (tests) do not share counters.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

from engines.contract import Usage
from engines.registry import ModelRegistry

LABELS = ("model", "instance")
TTFT_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class Metrics:
    def __init__(self, registry: ModelRegistry):
        self.collectors = CollectorRegistry()
        self.requests = Counter("playground_requests", "Requests handled by an instance, by outcome",
                                (*LABELS, "status"), registry=self.collectors)
        self.errors = Counter("playground_request_errors", "Requests that failed on an instance, by error code",
                              (*LABELS, "code"), registry=self.collectors)
        self.tokens = Counter("playground_tokens_generated", "Completion tokens generated", LABELS,
                              registry=self.collectors)
        self.prompt_tokens = Counter("playground_prompt_tokens", "Prompt tokens of finished requests", LABELS,
                                     registry=self.collectors)
        self.cached_tokens = Counter("playground_prompt_tokens_cached", "Prompt tokens found in the KV cache "
                                     "(not decoded again)", LABELS, registry=self.collectors)
        self.ttft = Histogram("playground_time_to_first_token_seconds", "Time from dispatch to the first token",
                              LABELS, buckets=TTFT_BUCKETS, registry=self.collectors)
        self.latency = Histogram("playground_request_duration_seconds", "Time from dispatch to the last token",
                                 LABELS, buckets=LATENCY_BUCKETS, registry=self.collectors)
        self.collectors.register(_PoolGauges(registry))

    def exposition(self) -> bytes:
        """Everything, in Prometheus text format."""
        return generate_latest(self.collectors)

    def attempt(self, model: str, instance: str, status: str, *, ttft: float | None = None,
                latency: float | None = None, usage: Usage | None = None) -> None:
        self.requests.labels(model, instance, status).inc()
        if status not in ("ok", "cancelled"):
            self.errors.labels(model, instance, status).inc()
        if usage is not None:
            self.tokens.labels(model, instance).inc(usage.completion_tokens)
            self.prompt_tokens.labels(model, instance).inc(usage.prompt_tokens)
            self.cached_tokens.labels(model, instance).inc(usage.cached_tokens)
        if ttft is not None:
            self.ttft.labels(model, instance).observe(ttft)
        if latency is not None:
            self.latency.labels(model, instance).observe(latency)


class _PoolGauges:
    """Live figures read from the pools at scrape time."""

    def __init__(self, registry: ModelRegistry):
        self.registry = registry

    def collect(self):
        queued = GaugeMetricFamily("playground_queue_depth", "Requests waiting for a slot", labels=LABELS)
        active = GaugeMetricFamily("playground_active_requests", "Requests being generated", labels=LABELS)
        healthy = GaugeMetricFamily("playground_instance_up", "1 if the instance takes traffic", labels=LABELS)
        for pool in self.registry.entries():
            for instance in pool.instances.values():
                labels = [pool.model_id, instance.name]
                queued.add_metric(labels, instance.queued)
                active.add_metric(labels, instance.active)
                healthy.add_metric(labels, 1 if instance.routable else 0)
        yield from (queued, active, healthy)
