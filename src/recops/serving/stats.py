"""Request statistics behind `GET /stats` and `GET /rollout/status`.

Each worker keeps counters and a latency histogram with 2%-wide log buckets (`snapshot()` is
small JSON); the workers of one server publish their snapshots to a shared folder and any
worker merges them exactly (`summarize`), so the numbers cover the whole server, not the worker
that happened to answer. Percentiles are read from the merged histogram (within 2%).
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

RECOMMEND = "/recommend"
SIMILAR = "/similar"
_BASE_MS = 0.001
_GROWTH = 1.02
_LOG_GROWTH = math.log(_GROWTH)


def bucket_of(ms: float) -> int:
    return max(0, int(math.log(max(ms, _BASE_MS) / _BASE_MS) / _LOG_GROWTH))


def bucket_value(index: int) -> float:
    """A bucket's representative latency (its geometric middle), ms."""
    return _BASE_MS * _GROWTH ** (index + 0.5)


class _Series:
    """Requests, failures and a latency histogram (ms) of one endpoint or model version."""

    __slots__ = ("buckets", "client_errors", "errors", "max_ms", "requests")

    def __init__(self) -> None:
        self.requests = 0
        self.errors = 0
        self.client_errors = 0
        self.max_ms = 0.0
        self.buckets: Counter[int] = Counter()

    def add(self, status: int, ms: float) -> None:
        self.requests += 1
        if status >= 500:
            self.errors += 1
        elif status >= 400:
            self.client_errors += 1
        self.buckets[bucket_of(ms)] += 1
        self.max_ms = max(self.max_ms, ms)

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "errors": self.errors,
            "client_errors": self.client_errors,
            "max_ms": self.max_ms,
            "latency_buckets": {str(k): v for k, v in self.buckets.items()},
        }


class ServingStats:
    """One worker's counters. `record` is called once per observed request."""

    def __init__(self) -> None:
        self.started_at = datetime.now(UTC).isoformat(timespec="seconds")
        self._lock = threading.Lock()
        self._endpoints: dict[str, _Series] = {}
        self._versions: dict[str, _Series] = {}
        self._roles: dict[str, str] = {}
        self._status: Counter[str] = Counter()
        self._sources: Counter[str] = Counter()
        self._cache: Counter[str] = Counter()
        self._precomputed = 0
        self._challenger_fallbacks = 0
        self._reloads: Counter[str] = Counter()
        self.version = 0  # bumped on every change (publish only when it moved)

    def record(self, endpoint: str, status: int, seconds: float, info: Mapping[str, Any]) -> None:
        ms = seconds * 1000.0
        with self._lock:
            self.version += 1
            self._endpoints.setdefault(endpoint, _Series()).add(status, ms)
            if endpoint != RECOMMEND:
                return
            self._status[str(status)] += 1
            if status < 400:
                self._sources[str(info.get("source") or "none")] += 1
                self._cache["hits" if info.get("cached") else "misses"] += 1
                self._precomputed += bool(info.get("precomputed"))
            version = info.get("version")
            if version is not None:
                self._versions.setdefault(str(version), _Series()).add(status, ms)
                self._roles[str(version)] = str(info.get("role") or "")
            failed = info.get("challenger_failed")
            if failed is not None:  # the challenger raised; the champion answered instead
                self._challenger_fallbacks += 1
                self._versions.setdefault(str(failed), _Series()).add(500, ms)

    def record_reload(self, result: str) -> None:
        with self._lock:
            self.version += 1
            self._reloads[result] += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "started_at": self.started_at,
                "endpoints": {k: v.to_dict() for k, v in self._endpoints.items()},
                "versions": {
                    k: {**v.to_dict(), "role": self._roles.get(k, "")}
                    for k, v in self._versions.items()
                },
                "status": dict(self._status),
                "sources": dict(self._sources),
                "cache": dict(self._cache),
                "precomputed": self._precomputed,
                "challenger_failures": self._challenger_fallbacks,
                "reloads": dict(self._reloads),
            }


def percentiles(buckets: Mapping[int, int], max_ms: float | None = None) -> dict[str, Any]:
    """p50/p95/p99 (ms) from a latency histogram."""
    total = sum(buckets.values())
    if total == 0:
        return {"samples": 0, "p50": None, "p95": None, "p99": None, "max": None}
    ordered = sorted(buckets.items())
    out: dict[str, Any] = {"samples": total}
    for name, q in (("p50", 0.50), ("p95", 0.95), ("p99", 0.99)):
        rank, seen = q * total, 0
        for index, count in ordered:
            seen += count
            if seen >= rank:
                value = bucket_value(index)
                out[name] = round(min(value, max_ms) if max_ms else value, 3)
                break
    out["max"] = round(max_ms, 3) if max_ms is not None else None
    return out


def _merge_series(items: list[Mapping[str, Any]]) -> dict[str, Any]:
    buckets: Counter[int] = Counter()
    for item in items:
        buckets.update({int(k): int(v) for k, v in item.get("latency_buckets", {}).items()})
    max_ms = max((float(i.get("max_ms", 0.0)) for i in items), default=None)
    return {
        "requests": sum(int(s.get("requests", 0)) for s in items),
        "errors": sum(int(s.get("errors", 0)) for s in items),
        "client_errors": sum(int(s.get("client_errors", 0)) for s in items),
        "latency_ms": percentiles(buckets, max_ms),
    }


def _sum_counts(snapshots: list[Mapping[str, Any]], key: str) -> Counter[str]:
    total: Counter[str] = Counter()
    for snap in snapshots:
        total.update({str(k): int(v) for k, v in snap.get(key, {}).items()})
    return total


def summarize(snapshots: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Merge worker snapshots into the `/stats` answer."""
    snaps = list(snapshots)
    endpoints = {
        name: _merge_series([s["endpoints"][name] for s in snaps if name in s.get("endpoints", {})])
        for name in sorted({n for s in snaps for n in s.get("endpoints", {})})
    }
    sources = _sum_counts(snaps, "sources")
    cache = _sum_counts(snaps, "cache")
    answered = sources["model"] + sources["fallback"]
    lookups = cache["hits"] + cache["misses"]
    recommend = endpoints.get(RECOMMEND, _merge_series([]))
    return {
        "workers": len(snaps),
        "workers_ready": sum(bool(s.get("ready", True)) for s in snaps),
        "since": min((s["started_at"] for s in snaps), default=None),
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "recommend": {
            **recommend,
            "by_status": dict(sorted(_sum_counts(snaps, "status").items())),
            "by_source": dict(sources),
            "fallback_rate": sources["fallback"] / answered if answered else None,
            "cache": {
                "hits": cache["hits"],
                "misses": cache["misses"],
                "hit_rate": cache["hits"] / lookups if lookups else None,
            },
            "precomputed": sum(int(s.get("precomputed", 0)) for s in snaps),
        },
        "endpoints": endpoints,
        "reloads": dict(_sum_counts(snaps, "reloads")),
    }


def version_summary(snapshots: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per model version: requests, errors, latency (for `/rollout/status`)."""
    snaps = list(snapshots)
    versions = sorted({v for s in snaps for v in s.get("versions", {})}, key=_version_key)
    out = {}
    for version in versions:
        items = [s["versions"][version] for s in snaps if version in s.get("versions", {})]
        roles = {str(i.get("role")) for i in items if i.get("role")}
        out[version] = {"roles": sorted(roles), **_merge_series(items)}
    return out


def _version_key(version: str) -> tuple[int, str]:
    return (int(version), version) if version.isdigit() else (1 << 62, version)
