"""Prometheus series of the service, exposed through BentoML's own `/metrics`.

BentoML serves `/metrics` from prometheus_client's multiprocess collector: every worker
writes its values to files in `$PROMETHEUS_MULTIPROC_DIR`, which BentoML sets for the
workers before they start. Metrics made with plain prometheus_client objects in a worker
therefore show up next to BentoML's `bentoml_service_*` series. (`bentoml.metrics` is only a
deprecated alias of prometheus_client in 1.4.) The objects are created on first use, never at
import time, so prometheus_client is set up after the environment is.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
#: Label values created at start (0), so `rate()`/`increase()` see the first event too.
RELOAD_RESULTS = ("success", "failure")
CACHE_RESULTS = ("hit", "miss")

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
        self.answers = Counter(
            "recommend_model_answers",
            "Answers by the role and version of the model that gave them (canary split)",
            ["role", "version"],
            registry=reg,
        )
        self.drift_psi = Gauge(
            "data_drift_psi",
            "PSI per feature of the latest drift check (the drift summary.json); NaN: skipped",
            ["feature"],
            registry=reg,
            multiprocess_mode="livemax",
        )
        self.drift_generated = Gauge(
            "data_drift_summary_timestamp_seconds",
            "When the drift summary the data_drift_psi series come from was written (Unix time)",
            registry=reg,
            multiprocess_mode="livemax",
        )
        for result in RELOAD_RESULTS:
            self.reloads.labels(result=result)
        for result in CACHE_RESULTS:
            self.cache.labels(result=result)
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
        self,
        status: int,
        source: str | None,
        seconds: float,
        cached: bool | None,
        role: str | None = None,
        version: str | None = None,
    ) -> None:
        self.requests.labels(status=str(status), source=source or "none").inc()
        if version is not None and status < 400:
            self.answers.labels(role=role or "", version=str(version)).inc()
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


class DriftExporter:
    """Keeps `data_drift_psi{feature}` in step with a drift summary.json (re-read when its
    modification time or size changes; a feature that left the summary, or was skipped, is NaN).
    """

    def __init__(self, metrics: ServingMetrics, path: Path | None) -> None:
        self.metrics = metrics
        self.path = path
        self._stamp: tuple[float, int] | None = None
        self._features: set[str] = set()

    def refresh(self) -> bool:
        """Re-read the summary if it changed; True when the series were updated."""
        if self.path is None:
            return False
        try:
            stat = self.path.stat()
        except OSError:
            return False
        stamp = (stat.st_mtime, stat.st_size)
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        try:
            summary = json.loads(self.path.read_text())
            features = dict(summary.get("features") or {})
        except (OSError, ValueError, AttributeError, TypeError) as exc:
            log.warning("drift summary %s unreadable, drift series unchanged: %s", self.path, exc)
            return False
        values = {str(name): _psi_of(item) for name, item in features.items()}
        for name in self._features - set(values):
            values[name] = math.nan
        for name, value in values.items():
            self.metrics.drift_psi.labels(feature=name).set(value)
        self._features = {name for name in values if name in features}
        generated = _timestamp(summary.get("generated_at"))
        if generated is not None:
            self.metrics.drift_generated.set(generated)
        return True


def _psi_of(item: Any) -> float:
    psi = item.get("psi") if isinstance(item, dict) else None
    return float(psi) if isinstance(psi, int | float) else math.nan


def _timestamp(text: Any) -> float | None:
    try:
        return datetime.fromisoformat(str(text)).timestamp()
    except ValueError:
        return None


_METRICS: ServingMetrics | None = None
_LOCK = threading.Lock()


def get_metrics() -> ServingMetrics:
    """The process-wide series (registered once in prometheus_client's default registry)."""
    global _METRICS
    with _LOCK:
        if _METRICS is None:
            _METRICS = ServingMetrics()
        return _METRICS
