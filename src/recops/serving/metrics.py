"""Prometheus series of the service, exposed through BentoML's own `/metrics`.

BentoML serves `/metrics` from prometheus_client's multiprocess collector: every worker
writes its values to files in `$PROMETHEUS_MULTIPROC_DIR`, which BentoML sets for the
workers before they start. Metrics made with plain prometheus_client objects in a worker
therefore show up next to BentoML's `bentoml_service_*` series. (`bentoml.metrics` is only a
deprecated alias of prometheus_client in 1.4.) The objects are created on first use, never at
import time, so prometheus_client is set up after the environment is.
"""

from __future__ import annotations

import threading
from typing import Any

LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0015,
    0.002,
    0.003,
    0.005,
    0.0075,
    0.01,
    0.015,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)


class ServingMetrics:
    """The named series; `registry=None` leaves them unregistered (tests use their own)."""

    def __init__(self, registry: Any = "default") -> None:
        from prometheus_client import REGISTRY, Counter, Gauge, Histogram

        reg = REGISTRY if registry == "default" else registry
        self.requests = Counter(
            "recommend_requests",
            "POST /recommend requests by HTTP status and answer source (model, fallback, none)",
            ["status", "source"],
            registry=reg,
        )
        self.latency = Histogram(
            "recommend_latency_seconds",
            "Server-side latency of POST /recommend (request in, response out)",
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.fallback = Counter(
            "recommend_fallback",
            "Recommendations answered by the cold-start fallback (unknown or light users)",
            registry=reg,
        )
        self.cache = Counter(
            "recommend_cache",
            "Answer cache lookups by result (hit, miss)",
            ["result"],
            registry=reg,
        )
        self.reloads = Counter(
            "model_reload",
            "Model loads by result (success, failure, unchanged)",
            ["result"],
            registry=reg,
        )
        self.version_info = Gauge(
            "model_version_info",
            "1 for each model version a worker serves, by role (champion, challenger)",
            ["role", "model_name", "version", "model_type"],
            registry=reg,
            multiprocess_mode="livemax",
        )
        self.degraded = Gauge(
            "model_degraded",
            "1 while a worker serves a last known good version instead of the champion",
            registry=reg,
            multiprocess_mode="livemax",
        )
        self._served: dict[str, tuple[str, str, str]] = {}
        self._lock = threading.Lock()

    def observe_recommend(
        self, status: int, source: str | None, seconds: float, cached: bool | None
    ) -> None:
        self.requests.labels(status=str(status), source=source or "none").inc()
        self.latency.observe(seconds)
        if source == "fallback":
            self.fallback.inc()
        if cached is not None:
            self.cache.labels(result="hit" if cached else "miss").inc()

    def served(self, role: str, model_name: str, version: str | None, model_type: str) -> None:
        """Mark what `role` serves now (the previous version of that role goes to 0)."""
        with self._lock:
            previous = self._served.pop(role, None)
            if previous is not None:
                self.version_info.labels(role, *previous).set(0)
            if version is not None:
                self._served[role] = (model_name, str(version), model_type)
                self.version_info.labels(role, model_name, str(version), model_type).set(1)


_METRICS: ServingMetrics | None = None
_LOCK = threading.Lock()


def get_metrics() -> ServingMetrics:
    """The process-wide series (registered once in prometheus_client's default registry)."""
    global _METRICS
    with _LOCK:
        if _METRICS is None:
            _METRICS = ServingMetrics()
        return _METRICS
