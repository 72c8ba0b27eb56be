"""Evidently's recsys report for an evaluation (a real Evidently run on the small world)."""

from __future__ import annotations

from pathlib import Path

from recops.evaluation.evaluate import evaluate
from recops.evaluation.evidently_report import report_for
from recops.features.dataset import SplitData
from recops.models.recommender import Recommender


def test_report_of_an_evaluation_is_html_with_the_recsys_metrics(
    world_split: SplitData, ease: Recommender, tmp_path: Path
) -> None:
    result = evaluate(ease, world_split, with_baseline=False)
    path = report_for(
        result, world_split.train.items.external_ids, tmp_path / "r.html", 10, 40, seed=1
    )
    assert path is not None and path.exists()
    html = path.read_text()
    for name in ("NDCG", "Personalization", "Diversity", "Serendipity", "Novelty"):
        assert name in html, name
