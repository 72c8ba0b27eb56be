"""`recops loadtest` pieces: durations, the traffic mix (activity-weighted known users, unknown
users, filters), reading users from a snapshot or a file, and the SLO verdicts."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recops.config import compose
from recops.errors import ConfigError, DataSourceError
from recops.serving.config import ServeConfig
from recops.serving.loadtest import (
    Outcome,
    Traffic,
    load_traffic,
    parse_duration,
    slo_rows,
    summarize,
)


def test_parse_duration() -> None:
    assert parse_duration("60s") == 60 and parse_duration("2m") == 120
    assert parse_duration("90") == 90 and parse_duration("500ms") == 0.5
    for bad in ("", "soon", "-3s", "0"):
        with pytest.raises(ConfigError, match="--duration"):
            parse_duration(bad)


def snapshot(tmp_path: Path) -> Path:
    folder = tmp_path / "snapshot"
    folder.mkdir()
    users = ["heavy"] * 90 + ["light"] * 10
    events = pd.DataFrame({"user_id": users, "item_id": [f"i{n % 7}" for n in range(100)]})
    events.to_parquet(folder / "events.parquet")
    items = pd.DataFrame(
        {"item_id": [f"i{n}" for n in range(7)], "category": ["a", "b"] * 3 + ["c"]}
    )
    items.to_parquet(folder / "items.parquet")
    return folder


def take(traffic: Traffic, n: int, seed: int = 0) -> list[dict[str, object]]:
    it = traffic.requests(seed)
    return [next(it) for _ in range(n)]


def test_traffic_mix_follows_activity_and_shares(tmp_path: Path) -> None:
    traffic = load_traffic(snapshot(tmp_path), unknown_share=0.2, filter_share=0.3, k=5)
    assert traffic.categories == ["a", "b", "c"] and len(traffic.items) == 7
    bodies = take(traffic, 5000)
    users = Counter(
        "new" if str(b["user_id"]).startswith("loadtest-new-") else b["user_id"] for b in bodies
    )
    assert users["new"] / 5000 == pytest.approx(0.2, abs=0.02)
    known = users["heavy"] + users["light"]
    assert users["heavy"] / known == pytest.approx(0.9, abs=0.02)  # 90 of 100 events
    filtered = [b["filters"] for b in bodies if "filters" in b]
    assert len(filtered) / 5000 == pytest.approx(0.3, abs=0.02)
    assert all(
        f["category"] in {"a", "b", "c"} and len(f["exclude_item_ids"]) == 3 for f in filtered
    )  # type: ignore[index]
    assert {b["k"] for b in bodies} == {5}
    assert take(traffic, 50, seed=1) == take(traffic, 50, seed=1)  # reproducible


def test_users_from_a_csv_and_bad_sources(tmp_path: Path) -> None:
    csv = tmp_path / "users.csv"
    csv.write_text("user_id\nu1\nu1\nu2\n")
    traffic = load_traffic(csv, 0.0, 0.0, 10)
    assert traffic.users == ["u1", "u2"] and np.allclose(traffic.weights, [2 / 3, 1 / 3])
    assert traffic.categories == [] and "filters" not in take(traffic, 10)[0]
    bad = tmp_path / "bad.csv"
    bad.write_text("customer\nx\n")
    with pytest.raises(DataSourceError, match=r"bad\.csv: needs a user_id column"):
        load_traffic(bad, 0.1, 0.1, 10)
    with pytest.raises(DataSourceError, match="no such file"):
        load_traffic(tmp_path / "missing.parquet", 0.1, 0.1, 10)
    with pytest.raises(DataSourceError, match=r"no events\.parquet"):
        load_traffic(tmp_path, 0.1, 0.1, 10)
    with pytest.raises(ConfigError, match="--unknown-share"):
        load_traffic(csv, 1.5, 0.1, 10)


def outcome(latencies_ms: list[float], statuses: list[int | None]) -> Outcome:
    out = Outcome(wall_s=2.0)
    for ms, status in zip(latencies_ms, statuses, strict=True):
        out.record(ms / 1000, status, "ConnectError" if status is None else "", "model")
    return out


def test_slo_verdicts() -> None:
    slo = ServeConfig.from_config(compose([])).slo  # the shipped conf/serve
    fast = summarize(outcome([5.0] * 1000, [200] * 1000), slo, 4)
    assert fast["slo_met"] and fast["throughput_rps"] == 500 and fast["availability"] == 1.0
    assert [r[3] for r in slo_rows(fast)] == ["met"] * 4
    slow = summarize(outcome([5.0] * 900 + [150.0] * 100, [200] * 1000), slo, 4)
    assert not slow["slo_met"]
    assert {r["name"]: r["met"] for r in slow["slo"]} == {
        "availability": True,
        "p95 latency": False,
        "p99 latency": True,
        "error rate": True,
    }
    # 4xx: an error, not unavailability; 5xx and no answer: both
    mixed = summarize(
        outcome([5.0] * 1000, [200] * 985 + [400] * 10 + [503] * 3 + [None] * 2), slo, 4
    )
    assert mixed["error_rate"] == pytest.approx(0.015) and mixed["availability"] == 0.995
    assert mixed["failures"] == {"ConnectError": 2} and mixed["by_status"]["503"] == 3
    assert not summarize(Outcome(wall_s=1.0), slo, 1)["slo_met"]  # nothing answered
