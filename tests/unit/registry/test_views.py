"""List/diff formatting and the version description."""

from __future__ import annotations

from recops.registry.describe import describe_version
from recops.registry.views import age


def test_age() -> None:
    now = 1_000_000.0
    assert age(int((now - 30) * 1000), now) == "30s"
    assert age(int((now - 600) * 1000), now) == "10m"
    assert age(int((now - 7200) * 1000), now) == "2h"
    assert age(int((now - 3 * 86400) * 1000), now) == "3d"
    assert age(None) == "?"


def test_description_has_provenance_metric_table_and_segments() -> None:
    tags = {"model_type": "als", "dataset": "synthetic", "data_snapshot": "0123456789ab"}
    metrics = {
        "ndcg_at_10": 0.3,
        "baseline_ndcg_at_10": 0.15,
        "recall_at_10": 0.4,
        "light_ndcg_at_10": 0.25,
    }
    text = describe_version(tags, metrics, "run1", "ndcg_at_10")
    assert text.startswith("**als** on `synthetic` (snapshot `01234567`")
    assert "| ndcg_at_10 | 0.3000 | 0.1500 |" in text
    assert "| recall_at_10 | 0.4000 | – |" in text
    assert "Segments (ndcg_at_10): light 0.2500" in text


def test_description_shows_intervals_sample_and_paired_test() -> None:
    metrics = {
        "ndcg_at_10": 0.3,
        "ndcg_at_10_ci_low": 0.28,
        "ndcg_at_10_ci_high": 0.32,
        "baseline_ndcg_at_10": 0.15,
        "vs_baseline_ndcg_at_10_diff": 0.15,
        "vs_baseline_ndcg_at_10_p_wilcoxon": 1e-6,
        "vs_baseline_ndcg_at_10_p_bootstrap": 0.001,
        "eval_users": 5000.0,
        "eval_test_users": 80000.0,
    }
    text = describe_version({"model_type": "als"}, metrics, "run1", "ndcg_at_10")
    assert "| ndcg_at_10 | 0.3000 [0.2800, 0.3200] | 0.1500 |" in text
    assert "diff +0.1500, Wilcoxon p=1e-06, bootstrap p=0.001" in text
    assert "Evaluated on 5000 of 80000 test users" in text
