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
