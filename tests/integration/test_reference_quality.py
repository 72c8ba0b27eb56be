"""The evaluator reproduces the team's reference figures on MovieLens ml-latest-small.

Reference (shared/datasets/README.md): per-user temporal 80/20 split, ratings as implicit
positives, seen items excluded: popularity NDCG@10 0.0885 / Recall@10 0.0822, implicit ALS
(64 factors, 15 iterations, reg 0.05, alpha 2) NDCG@10 0.1090 / Recall@10 0.1119.
"""

from __future__ import annotations

import pytest
from omegaconf import DictConfig

from recops.config import compose
from recops.features.dataset import SplitData
from recops.models.recommender import Recommender
from recops.pipeline.context import StagePaths
from recops.pipeline.evaluate import evaluate_with_config
from recops.pipeline.prepare import features_stage, ingest_stage
from recops.pipeline.train import build_model, fit_model

from .conftest import PROJECT_ROOT

ML_SMALL = PROJECT_ROOT.parent / "shared" / "datasets" / "ml-latest-small"
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not ML_SMALL.is_dir(), reason=f"MovieLens not found at {ML_SMALL}"),
]
REFERENCE = {"popularity": (0.0885, 0.0822), "als": (0.1090, 0.1119)}
TOLERANCE = 0.01


@pytest.fixture(scope="module")
def movielens(tmp_path_factory: pytest.TempPathFactory) -> tuple[DictConfig, SplitData]:
    tmp = tmp_path_factory.mktemp("ml")
    cfg = compose(
        [
            "data=movielens_small",
            f"data.source.local_dir={ML_SMALL}",
            f"paths.duckdb={tmp / 'recops.duckdb'}",
            f"paths.snapshot_dir={tmp / 'snapshot'}",
            f"paths.features_dir={tmp / 'features'}",
        ]
    )
    paths = StagePaths.from_config(cfg)
    ingest_stage(cfg, paths)
    return cfg, features_stage(cfg, paths)


@pytest.mark.parametrize("model", sorted(REFERENCE))
def test_reference_ndcg_and_recall(model: str, movielens: tuple[DictConfig, SplitData]) -> None:
    cfg, split = movielens
    # conf/model/als.yaml holds the reference hyperparameters (64, 15, 0.05, 2)
    fitted = build_model(compose(["data=movielens_small", f"model={model}"]))
    fit_model(fitted, split.train)
    result = evaluate_with_config(Recommender.from_training(fitted, split.train), split, cfg)
    ndcg, recall = REFERENCE[model]
    assert result.metrics["ndcg_at_10"] == pytest.approx(ndcg, abs=TOLERANCE)
    assert result.metrics["recall_at_10"] == pytest.approx(recall, abs=TOLERANCE)
