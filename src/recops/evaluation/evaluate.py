"""Evaluate any `Recommender` on a split: warm/light/cold segments, beside the baseline.

Evaluation goes through external ids, so a model trained on other data (the current champion)
is measured on exactly the same holdout as a fresh candidate.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recops.columns import Columns
from recops.evaluation.metrics import beyond_accuracy_metrics, ranking_metrics
from recops.features.dataset import SplitData
from recops.models.popularity import PopularityModel
from recops.models.recommender import Recommender

log = logging.getLogger(__name__)

#: Segments: `warm` users have training history (the headline metrics), `light` is the subset
#: with little history, `cold` users have none and get the popularity fallback.
SEGMENTS = ("warm", "light", "cold")


@dataclass
class EvaluationResult:
    """Metrics of one model (per segment) and of the popularity baseline on the same split."""

    model_type: str
    segments: dict[str, dict[str, float]]
    baseline: dict[str, float] = field(default_factory=dict)

    @property
    def metrics(self) -> dict[str, float]:
        """Headline metrics: the warm segment."""
        return self.segments.get("warm", {})

    def flat(self) -> dict[str, float]:
        """MLflow metric keys: `ndcg_at_10`, `cold_ndcg_at_10`, `baseline_ndcg_at_10`, ..."""
        out = dict(self.metrics)
        for name, values in self.segments.items():
            if name != "warm":
                out.update({f"{name}_{k}": v for k, v in values.items()})
        out.update({f"baseline_{k}": v for k, v in self.baseline.items()})
        return out

    def to_dict(self) -> dict[str, Any]:
        """`model` holds the headline (warm) metrics; `segments` the other segments."""
        others = {name: values for name, values in self.segments.items() if name != "warm"}
        return {
            "model_type": self.model_type,
            "model": self.metrics,
            "segments": others,
            "baseline": self.baseline,
        }


def evaluate(
    recommender: Recommender,
    split: SplitData,
    ks: Sequence[int] = (5, 10, 20),
    chunk_size: int = 2048,
    light_user_max_interactions: int = 5,
    with_baseline: bool = True,
) -> EvaluationResult:
    """All segments for `recommender`, and the popularity baseline unless asked not to."""
    segments = evaluate_segments(recommender, split, ks, chunk_size, light_user_max_interactions)
    baseline: dict[str, float] = {}
    if with_baseline:
        popularity = Recommender.from_training(PopularityModel().fit(split.train), split.train)
        baseline = evaluate_segments(
            popularity, split, ks, chunk_size, light_user_max_interactions
        )["warm"]
    return EvaluationResult(recommender.model_type, segments, baseline)


def evaluate_segments(
    recommender: Recommender,
    split: SplitData,
    ks: Sequence[int],
    chunk_size: int,
    light_user_max_interactions: int,
) -> dict[str, dict[str, float]]:
    history = np.diff(split.train.user_items.indptr)
    test = split.test
    warm = test[test[Columns.user_idx] >= 0]
    light = warm[history[warm[Columns.user_idx].to_numpy()] <= light_user_max_interactions]
    frames = {"warm": warm, "light": light, "cold": test[test[Columns.user_idx] < 0]}
    return {
        name: _evaluate_frame(recommender, split, frame, ks, chunk_size)
        for name, frame in frames.items()
        if not frame.empty
    }


def _evaluate_frame(
    recommender: Recommender,
    split: SplitData,
    test: pd.DataFrame,
    ks: Sequence[int],
    chunk_size: int,
) -> dict[str, float]:
    users, relevance = relevance_matrix(test, split.train.n_items)
    recos = recommend_in_split_space(recommender, split, users, max(ks))
    metrics = ranking_metrics(recos, relevance, ks=ks, chunk_size=chunk_size)
    metrics.update(
        beyond_accuracy_metrics(recos, split.train.item_popularity(), split.train.n_users, ks=ks)
    )
    return metrics


def relevance_matrix(test: pd.DataFrame, n_items: int) -> tuple[np.ndarray, sp.csr_matrix]:
    """Unique external user ids of `test` and their binary relevance rows."""
    codes, users = pd.factorize(test[Columns.user], sort=True)
    matrix = sp.csr_matrix(
        (np.ones(len(test), dtype=np.float32), (codes, test[Columns.item_idx].to_numpy())),
        shape=(len(users), n_items),
    )
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    return np.asarray(users, dtype=object), matrix


def recommend_in_split_space(
    recommender: Recommender, split: SplitData, user_ids: np.ndarray, k: int
) -> np.ndarray:
    """Top-k for external `user_ids`, as item indices of `split` (-1 where the item is unknown)."""
    ids, _ = recommender.recommend_indices(list(user_ids), k, on_unknown="popular")
    to_split = split.train.items.lookup(recommender.items.external_ids)
    return np.where(ids >= 0, to_split[np.maximum(ids, 0)], -1)
