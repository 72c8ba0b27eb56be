"""Signals, content similarity, the fallback blend and the reranker."""

from __future__ import annotations

import numpy as np

from recops.models.base import blocked_mask
from recops.models.recommender import Recommender
from recops.serving.config import RerankWeights
from recops.serving.content import ContentIndex, metadata_matrix
from recops.serving.scoring import ItemSignals, fallback_rank, minmax, rerank

from .conftest import shipped_part


def test_metadata_similarity_prefers_the_same_category(recommender: Recommender) -> None:
    features = metadata_matrix(recommender.item_meta)
    sim = (features @ features[0].T).toarray().ravel()  # item 0 is a "books" item
    same = sim[[j for j in range(1, 30) if j % 3 == 0]]
    other = sim[[j for j in range(1, 30) if j % 3 != 0]]
    assert np.isclose(sim[0], 1.0) and same.min() > other.max()


def test_profile_scores_in_unit_range(recommender: Recommender) -> None:
    content = ContentIndex.build(recommender.item_meta, recommender.model)
    assert content.kind == "metadata"  # ALS item factors are not built from features
    scores = content.profile_scores(np.array([0, 3]))
    assert scores.min() >= 0 and scores.max() <= 1.0001
    assert content.profile_scores(np.array([], dtype=np.int64)).sum() == 0


def test_recent_popularity_uses_the_window(recommender: Recommender) -> None:
    signals = ItemSignals.build(recommender, half_life_days=7)
    assert "last 14 days" in signals.window
    # only items 0..5 had events in the last days of the world
    assert set(signals.popular_order.tolist()) <= set(range(6))
    assert signals.freshness is not None and signals.freshness[0] > signals.freshness[20]
    no_activity = Recommender(
        recommender.model,
        recommender.users,
        recommender.items,
        recommender.item_meta,
        recommender.popularity,
    )
    assert "all training data" in ItemSignals.build(no_activity, 7).window


def test_fallback_blends_popularity_and_content(recommender: Recommender) -> None:
    signals = ItemSignals.build(recommender, 7)
    content = ContentIndex.build(recommender.item_meta, recommender.model)
    weights = shipped_part("fallback", popularity_weight=0.5, content_weight=0.5)
    ids, scores = fallback_rank(signals, content, np.zeros(0, np.int64), None, 3, weights)
    assert ids.tolist() == signals.popular_order[:3].tolist()
    assert np.all(np.diff(scores) <= 0)
    seeds = np.array([1, 4, 7])  # "games" items (i % 3 == 1)
    content_heavy = shipped_part("fallback", popularity_weight=0.1, content_weight=0.9)
    ids, scores = fallback_rank(signals, content, seeds, None, 5, content_heavy)
    assert all(i % 3 == 1 for i in ids) and np.all(np.diff(scores) <= 0)
    blended, _ = fallback_rank(signals, content, seeds, None, 5, weights)
    assert set(blended.tolist()) != set(ids.tolist())  # popularity pulls in other items
    mask = blocked_mask(30, np.array([0, 3]), np.arange(0, 30, 3))  # only books, minus 0, 3
    ids, _ = fallback_rank(signals, content, seeds, mask, 5, weights)
    assert ids.size and all(i % 3 == 0 and i not in (0, 3) for i in ids)


def test_rerank_orders_by_weighted_signals(recommender: Recommender) -> None:
    signals = ItemSignals.build(recommender, 7)
    candidates = np.array([20, 0, 21])
    cf = np.array([3.0, 2.0, 1.0], dtype=np.float32)
    ids, _ = rerank(candidates, cf, None, signals, RerankWeights(1, 0, 0, 0), 3)
    assert ids.tolist() == [20, 0, 21]  # pure CF keeps the model's order
    ids, _ = rerank(candidates, cf, None, signals, RerankWeights(0, 0, 1, 1), 2)
    assert ids[0] == 0  # item 0 is recent and popular
    assert minmax(np.array([1.0, 1.0])).tolist() == [1.0, 1.0]
