"""`recops loadtest`: realistic POST /recommend traffic against a running service, measured
against the SLOs of `serve.slo`.

Traffic: known users drawn in proportion to their events (active users come back more often),
a share of unknown users (the cold-start fallback), a share of requests with filters (a
category, excluded items). Load: `concurrency` closed-loop clients on keep-alive connections
for `duration` seconds (an asyncio httpx client: every request's latency is measured exactly,
and it needs no extra process or monkey-patching, which Locust's gevent runner would).

Error rate: requests without a 2xx answer (any status >= 400, a timeout, a refused or broken
connection). Availability: requests not failed by the server (5xx, timeout, connection), so a
4xx caused by the client is an error but not unavailability.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from recops.errors import ConfigError, DataSourceError
from recops.serving.config import SloConfig

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(text: str) -> float:
    """`60s`, `2m`, `90` (seconds), `500ms` -> seconds."""
    match = _DURATION.match(str(text))
    if not match or float(match.group(1)) <= 0:
        raise ConfigError(f"--duration: expected e.g. 60s, 2m or 90, got {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


@dataclass(frozen=True)
class Traffic:
    """Who asks for what. `requests(seed)` yields POST /recommend bodies forever."""

    users: list[str]
    weights: np.ndarray  # probability per user (by activity)
    items: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    unknown_share: float = 0.1
    filter_share: float = 0.2
    k: int = 10

    def __post_init__(self) -> None:
        for name in ("unknown_share", "filter_share"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"--{name.replace('_', '-')} must be in [0, 1], got {value}")
        if not self.users and self.unknown_share < 1.0:
            raise DataSourceError("no known users to send (and --unknown-share < 1)")

    def requests(self, seed: int = 0) -> Iterator[dict[str, Any]]:
        rng = np.random.default_rng(seed)
        batch = 1024
        while True:
            known = rng.choice(len(self.users), size=batch, p=self.weights) if self.users else None
            unknown = rng.random(batch) < self.unknown_share
            filtered = rng.random(batch) < self.filter_share
            for i in range(batch):
                if unknown[i] or known is None:
                    user = f"loadtest-new-{rng.integers(1 << 40):x}"
                else:
                    user = self.users[int(known[i])]
                body: dict[str, Any] = {"user_id": user, "k": self.k}
                if filtered[i]:
                    body["filters"] = self._filters(rng)
                yield body

    def _filters(self, rng: np.random.Generator) -> dict[str, Any]:
        filters: dict[str, Any] = {}
        if self.categories:
            filters["category"] = self.categories[int(rng.integers(len(self.categories)))]
        if self.items:
            picks = rng.integers(len(self.items), size=3)
            filters["exclude_item_ids"] = [self.items[int(i)] for i in picks]
        return filters


def load_traffic(path: Path, unknown_share: float, filter_share: float, k: int) -> Traffic:
    """Known users (weighted by their events) and items/categories from a snapshot folder
    (`events.parquet` + `items.parquet`) or one events/users file (parquet or CSV with a
    `user_id` column; an optional `item_id`, `category`)."""
    import pandas as pd

    def read(file: Path) -> pd.DataFrame:
        try:
            if file.suffix == ".parquet":
                return pd.read_parquet(file)
            return pd.read_csv(file, dtype=str)
        except (OSError, ValueError) as exc:
            raise DataSourceError(f"--users-from {file}: unreadable ({exc})") from exc

    if path.is_dir():
        events_file = path / "events.parquet"
        if not events_file.is_file():
            raise DataSourceError(f"--users-from {path}: no events.parquet in that folder")
        events = read(events_file)
        items_file = path / "items.parquet"
        items = read(items_file) if items_file.is_file() else None
    elif path.is_file():
        events, items = read(path), None
    else:
        raise DataSourceError(f"--users-from {path}: no such file or folder")
    if "user_id" not in events.columns:
        raise DataSourceError(
            f"--users-from {path}: needs a user_id column, has {list(events.columns)}"
        )
    counts = events["user_id"].astype(str).value_counts()
    weights = counts.to_numpy(dtype=float)
    catalogue = items if items is not None else events
    item_ids = (
        sorted(catalogue["item_id"].dropna().astype(str).unique())
        if "item_id" in catalogue.columns
        else []
    )
    categories = (
        sorted(catalogue["category"].dropna().astype(str).unique())
        if "category" in catalogue.columns
        else []
    )
    return Traffic(
        users=[str(u) for u in counts.index],
        weights=weights / weights.sum() if len(weights) else weights,
        items=item_ids,
        categories=categories,
        unknown_share=unknown_share,
        filter_share=filter_share,
        k=k,
    )


@dataclass
class Outcome:
    """What the clients saw."""

    latencies: list[float] = field(default_factory=list)  # seconds, every finished request
    statuses: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)  # no HTTP answer, by kind
    sources: Counter[str] = field(default_factory=Counter)
    wall_s: float = 0.0

    @property
    def requests(self) -> int:
        return sum(self.statuses.values()) + sum(self.failures.values())

    def record(self, seconds: float, status: int | None, kind: str, source: str | None) -> None:
        self.latencies.append(seconds)
        if status is None:
            self.failures[kind] += 1
        else:
            self.statuses[str(status)] += 1
        if source:
            self.sources[source] += 1


async def drive(
    url: str,
    traffic: Traffic,
    duration_s: float,
    concurrency: int,
    timeout_s: float = 10.0,
    seed: int = 0,
    on_tick: Any = None,
) -> Outcome:
    """`concurrency` closed-loop clients posting /recommend for `duration_s` seconds."""
    import httpx

    if concurrency < 1:
        raise ConfigError(f"--concurrency must be >= 1, got {concurrency}")
    outcome = Outcome()
    bodies = traffic.requests(seed)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    started = time.perf_counter()
    deadline = started + duration_s

    async with httpx.AsyncClient(base_url=url.rstrip("/"), limits=limits, timeout=timeout_s) as c:

        async def client() -> None:
            while time.perf_counter() < deadline:
                body = next(bodies)
                t0 = time.perf_counter()
                status: int | None = None
                kind, source = "", None
                try:
                    response = await c.post("/recommend", json=body)
                    status = response.status_code
                    if status == 200:
                        source = response.json().get("source")
                except httpx.TimeoutException:
                    kind = "timeout"
                except httpx.TransportError as exc:
                    kind = type(exc).__name__
                except ValueError:  # 200 with a body that is not JSON
                    status, kind = 599, "bad body"
                outcome.record(time.perf_counter() - t0, status, kind, source)

        async def ticker() -> None:
            last = started
            while (now := time.perf_counter()) < deadline:
                await asyncio.sleep(min(1.0, max(deadline - now, 0.0)))
                now = time.perf_counter()
                if on_tick is not None:
                    on_tick(now - last, outcome)
                last = now

        await asyncio.gather(ticker(), *(client() for _ in range(concurrency)))
    outcome.wall_s = time.perf_counter() - started
    return outcome


def summarize(outcome: Outcome, slo: SloConfig, concurrency: int) -> dict[str, Any]:
    """Latency percentiles, throughput, error rate, availability and the SLO verdicts."""
    n = outcome.requests
    ms = np.asarray(outcome.latencies) * 1000.0
    p50, p95, p99 = (float(x) for x in np.percentile(ms, [50, 95, 99])) if n else (math.nan,) * 3
    ok = sum(v for k, v in outcome.statuses.items() if k.startswith("2"))
    server_failed = sum(v for k, v in outcome.statuses.items() if int(k) >= 500) + sum(
        outcome.failures.values()
    )
    error_rate = (n - ok) / n if n else 1.0
    availability = (n - server_failed) / n if n else 0.0
    checks = [
        (
            "availability",
            f">= {slo.availability:.3%}",
            availability,
            availability >= slo.availability,
        ),
        ("p95 latency", f"<= {slo.p95_ms:g} ms", p95, p95 <= slo.p95_ms),
        ("p99 latency", f"<= {slo.p99_ms:g} ms", p99, p99 <= slo.p99_ms),
        ("error rate", f"<= {slo.error_rate:.2%}", error_rate, error_rate <= slo.error_rate),
    ]
    answered = sum(outcome.sources.values())
    return {
        "requests": n,
        "duration_s": round(outcome.wall_s, 2),
        "concurrency": concurrency,
        "throughput_rps": n / outcome.wall_s if outcome.wall_s else 0.0,
        "latency_ms": {
            "p50": p50,
            "p95": p95,
            "p99": p99,
            "max": float(ms.max()) if n else math.nan,
        },
        "error_rate": error_rate,
        "availability": availability,
        "by_status": dict(sorted(outcome.statuses.items())),
        "failures": dict(outcome.failures),
        "fallback_share": outcome.sources["fallback"] / answered if answered else None,
        "slo": [
            {"name": name, "objective": objective, "measured": value, "met": bool(met and n)}
            for name, objective, value, met in checks
        ],
        "slo_met": bool(n) and all(met for *_, met in checks),
    }


def format_measured(name: str, value: float) -> str:
    if name in ("availability", "error rate"):
        return f"{value:.3%}"
    return f"{value:.1f} ms"


def slo_rows(report: Mapping[str, Any]) -> list[tuple[str, str, str, str]]:
    return [
        (
            row["name"],
            row["objective"],
            format_measured(row["name"], row["measured"]),
            "met" if row["met"] else "MISSED",
        )
        for row in report["slo"]
    ]
