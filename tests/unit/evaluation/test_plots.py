"""Metric-at-k figure and tables."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib
import pytest

from recops.evaluation.plots import metrics_at_k_table, metrics_at_k_wide, plot_metrics_at_k

RESULTS = {
    "als": {
        "ndcg_at_5": 0.30,
        "ndcg_at_10": 0.35,
        "hit_rate_at_5": 0.5,
        "hit_rate_at_10": 0.6,
        "n_users": 100.0,
    },
    "popularity": {
        "ndcg_at_5": 0.10,
        "ndcg_at_10": 0.12,
        "hit_rate_at_5": 0.2,
        "n_users": 100.0,  # hit_rate_at_10 missing on purpose
    },
}


def test_long_table() -> None:
    table = metrics_at_k_table(RESULTS, ["ndcg", "hit_rate"])
    assert list(table.columns) == ["model", "k", "metric", "value"]
    assert len(table) == 7  # 4 (als) + 3 (popularity); n_users has no _at_k suffix
    row = table[(table["model"] == "als") & (table["metric"] == "hit_rate") & (table["k"] == 10)]
    assert row["value"].tolist() == [0.6]
    assert len(metrics_at_k_table(RESULTS, ["ndcg"])) == 4
    assert metrics_at_k_table(RESULTS, ["mrr"]).empty


def test_wide_table() -> None:
    wide = metrics_at_k_wide(RESULTS)
    assert list(wide.columns) == [
        "k",
        "als_hit_rate",
        "als_ndcg",
        "popularity_hit_rate",
        "popularity_ndcg",
    ]
    assert wide["k"].tolist() == [5, 10]
    assert wide["als_ndcg"].tolist() == [0.30, 0.35]
    assert math.isnan(wide.loc[wide["k"] == 10, "popularity_hit_rate"].item())
    assert list(metrics_at_k_wide({}).columns) == ["k"]


def test_plot_written(tmp_path: Path) -> None:
    backend = matplotlib.get_backend()
    out = plot_metrics_at_k(RESULTS, ["ndcg", "hit_rate", "mrr"], tmp_path / "sub" / "m.png")
    assert out == tmp_path / "sub" / "m.png"
    data = out.read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 1000
    assert matplotlib.get_backend() == backend


def test_plot_needs_metrics(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="metric_names"):
        plot_metrics_at_k(RESULTS, [], tmp_path / "m.png")
