from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from recops.models.recommender import Recommender
from recops.serving import precompute
from recops.serving.metrics import ServingMetrics

from .conftest import LIGHT_USERS


def test_precompute_roundtrip_and_coverage(recommender: Recommender, tmp_path: Path) -> None:
    table = precompute.compute(recommender, 3, 5)
    assert len(table) == 90 - len(LIGHT_USERS) and set(LIGHT_USERS).isdisjoint(table["user_id"])
    cov = precompute.coverage(recommender, table, 3)
    assert cov["precomputed_users"] == 85 and cov["fallback_known_users"] == 5
    path = tmp_path / "t.parquet"
    precompute.write(table, path, {"model_name": "m", "version": "4", "k": 5})
    assert precompute.read_meta(path)["version"] == "4"
    loaded = precompute.load(path, recommender, "m", "4")
    ids, _ = loaded.get("u10", 3)  # type: ignore[misc]
    assert len(ids) == 3 and loaded.get("u10", 6) is None and loaded.get("nobody", 3) is None
    with pytest.raises(ValueError, match="not m v5"):
        precompute.load(path, recommender, "m", "5")
    precompute.write(table, path, {"model_name": "m", "version": "4", "run_id": "r1", "k": 5})
    assert precompute.load(path, recommender, "m", "4", "r1").k == 5
    with pytest.raises(ValueError, match="run r2"):  # same version number, another store
        precompute.load(path, recommender, "m", "4", "r2")


def test_metrics_series_names() -> None:
    registry = CollectorRegistry()
    metrics = ServingMetrics(registry)
    metrics.observe_recommend(200, "fallback", 0.002, cached=False)
    metrics.observe_recommend(400, None, 0.001, cached=None)
    metrics.reloads.labels(result="failure").inc()
    metrics.served("champion", "m", "1", "als")
    metrics.served("champion", "m", "2", "als")
    text = generate_latest(registry).decode()
    for series in (
        'recommend_requests_total{source="fallback",status="200"}',
        'recommend_requests_total{source="none",status="400"}',
        "recommend_latency_seconds_bucket",
        "recommend_fallback_total",
        'model_reload_total{result="failure"}',
        'model_version_info{model_name="m",model_type="als",role="champion",version="2"} 1.0',
        'model_version_info{model_name="m",model_type="als",role="champion",version="1"} 0.0',
    ):
        assert series in text, series


def test_tables_without_item_indices_still_load(recommender: Recommender, tmp_path: Path) -> None:
    table = precompute.compute(recommender, 3, 5)
    meta = {"model_name": "m", "version": "4", "k": 5}
    precompute.write(table, tmp_path / "new.parquet", meta)
    precompute.write(table.drop(columns=["item_idx"]), tmp_path / "old.parquet", meta)
    new = precompute.load(tmp_path / "new.parquet", recommender, "m", "4")
    old = precompute.load(tmp_path / "old.parquet", recommender, "m", "4")
    for user in ("u10", "u50", "u89"):
        a, b = new.get(user, 5), old.get(user, 5)
        assert a is not None and b is not None
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_allclose(a[1], b[1])
        assert list(recommender.items.to_external(a[0])) == list(
            table.loc[table["user_id"] == user, "item_ids"].iloc[0]
        )
