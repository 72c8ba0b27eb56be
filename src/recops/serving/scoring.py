"""Item signals, the cold-start fallback and the hybrid reranker (pure numpy).

Fallback score = popularity_weight * recent popularity (scaled to [0, 1])
               + content_weight * content similarity to the items the user touched.
Rerank score   = cf * model score (min-max over the candidates) + content * similarity to the
                 user's history + popularity * log-scaled recent popularity
                 + recency * freshness exp(-age / half_life).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from recops.models.base import top_k
from recops.models.recommender import Recommender
from recops.serving.config import FallbackConfig, RerankWeights
from recops.serving.content import ContentIndex

_DAY_S = 86_400.0


@dataclass(frozen=True)
class ItemSignals:
    """Per-item popularity and freshness, each in [0, 1]."""

    popularity: np.ndarray  # recent popularity / max
    log_popularity: np.ndarray  # log1p(recent popularity) / max
    freshness: np.ndarray | None  # exp(-age / half-life); None without activity data
    popular_order: np.ndarray  # items with popularity > 0, most popular first (ties: index)
    window: str  # what "recent" means for this artifact

    @classmethod
    def build(cls, recommender: Recommender, half_life_days: float) -> ItemSignals:
        activity = recommender.activity
        if activity is not None and float(activity.recent_popularity.sum()) > 0:
            raw = activity.recent_popularity.astype(np.float64)
            window = f"last {activity.window_days:g} days of training data"
        else:
            raw = recommender.popularity.astype(np.float64)
            window = "all training data (the artifact has no recent activity)"
        raw = np.nan_to_num(np.maximum(raw, 0.0))
        # ties: more all-time users first, then lower index
        order = np.lexsort((np.arange(len(raw)), -recommender.popularity, -raw))
        order = order[raw[order] > 0]
        top = float(raw.max()) if raw.size else 0.0
        freshness = None
        if activity is not None:
            age_days = (activity.until - activity.last_seen) / _DAY_S
            decay = math.log(2) / max(float(half_life_days), 1e-9)
            freshness = np.nan_to_num(np.exp(-decay * np.maximum(age_days, 0.0))).astype(np.float32)
        return cls(
            popularity=(raw / top if top > 0 else raw).astype(np.float32),
            log_popularity=(np.log1p(raw) / math.log1p(top) if top > 0 else raw).astype(np.float32),
            freshness=freshness,
            popular_order=order.astype(np.int64),
            window=window,
        )


def fallback_rank(
    signals: ItemSignals,
    content: ContentIndex,
    seeds: np.ndarray,
    mask: np.ndarray | None,
    k: int,
    weights: FallbackConfig,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k item indices and scores of the fallback (shorter when fewer items qualify)."""
    if seeds.size == 0 or weights.content_weight <= 0:
        order = signals.popular_order
        if mask is not None:
            order = order[~mask[order]]
        ids = order[:k]
        return ids, signals.popularity[ids] * np.float32(weights.popularity_weight or 1.0)
    scores = weights.popularity_weight * signals.popularity + (
        weights.content_weight * content.profile_scores(seeds)
    )
    scores = scores.astype(np.float32)
    scores[scores <= 0] = -np.inf
    if mask is not None:
        scores[mask] = -np.inf
    ids, vals = top_k(scores[None, :], k)
    valid = ids[0] >= 0
    return ids[0][valid], vals[0][valid]


def minmax(values: np.ndarray) -> np.ndarray:
    finite = np.isfinite(values)
    if not finite.any():
        return np.zeros_like(values, dtype=np.float32)
    lo, hi = float(values[finite].min()), float(values[finite].max())
    if hi <= lo:
        return np.where(finite, 1.0, 0.0).astype(np.float32)
    return np.where(finite, (values - lo) / (hi - lo), 0.0).astype(np.float32)


def rerank(
    candidates: np.ndarray,
    cf_scores: np.ndarray,
    content_scores: np.ndarray | None,
    signals: ItemSignals,
    weights: RerankWeights,
    k: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Reorder the model's candidates by the weighted sum of signals; top-k (ties: index)."""
    total = weights.cf * minmax(cf_scores)
    if content_scores is not None and weights.content:
        total = total + weights.content * content_scores[candidates]
    if weights.popularity:
        total = total + weights.popularity * signals.log_popularity[candidates]
    if signals.freshness is not None and weights.recency:
        total = total + weights.recency * signals.freshness[candidates]
    order = np.lexsort((candidates, -total))[:k]
    return candidates[order], total[order].astype(np.float32)
