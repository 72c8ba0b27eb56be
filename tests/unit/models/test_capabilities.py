"""Optional model capabilities (serving), run over every configured model like the contract:
exact `score_items`, `factor_vectors` that rank like `recommend`, `item_similarity`,
`explain` (cites only the user's history) and `score_intervals` (or a clear refusal)."""

from __future__ import annotations

import numpy as np
import pytest

from recops.features.dataset import Dataset
from recops.models.base import RecModel

from .test_contract import MODEL_NAMES, build


@pytest.fixture(params=MODEL_NAMES)
def fitted(request: pytest.FixtureRequest, random_dataset: Dataset) -> RecModel:
    return build(str(request.param)).fit(random_dataset)


def test_score_items_are_the_scores_recommend_ranks_by(fitted: RecModel) -> None:
    ids, scores = fitted.recommend(np.arange(6), k=8)
    for user in range(6):
        valid = ids[user] >= 0
        got = fitted.score_items(user, ids[user][valid])
        np.testing.assert_allclose(got, scores[user][valid], rtol=1e-4, atol=1e-5)


def test_factor_vectors_rank_like_the_model(fitted: RecModel) -> None:
    vectors = fitted.factor_vectors()
    if vectors is None:
        pytest.skip(f"{fitted.model_type} is not a dot-product model")
    users, items = vectors
    assert users.shape[0] == fitted.n_users and items.shape[0] == fitted.n_items
    every = np.arange(fitted.n_items)
    for user in range(5):
        dot = items @ users[user]
        # the same scores up to a constant per user (LightFM leaves out the user bias);
        # item2vec gives items without a vector a fixed low score instead of 0
        exact = fitted.score_items(user, every)
        has = np.any(items != 0, axis=1)
        diff = (exact - dot)[has]
        np.testing.assert_allclose(diff, diff[0], rtol=1e-4, atol=1e-4)


def test_item_similarity_matches_similar_items(fitted: RecModel) -> None:
    items = np.array([0, 3, 7])
    sim = fitted.item_similarity(items)
    assert sim.shape == (3, 3)
    full = np.asarray(fitted._score_similar(items), dtype=np.float32)
    np.testing.assert_allclose(sim, full[:, items], rtol=1e-4, atol=1e-5)


def test_explanations_only_cite_the_users_history(fitted: RecModel) -> None:
    ids, _ = fitted.recommend(np.arange(10), k=5)
    if not fitted.supports_explain:
        with pytest.raises(NotImplementedError, match="do not explain"):
            fitted.explain(0, ids[0], 3)
        return
    seen = fitted.seen
    cited_any = False
    for user in range(10):
        history = set(seen.indices[seen.indptr[user] : seen.indptr[user + 1]].tolist())
        valid = ids[user][ids[user] >= 0]
        explained = fitted.explain(user, valid, 3)
        assert len(explained) == len(valid)
        for pairs in explained:
            assert len(pairs) <= 3
            assert {item for item, _ in pairs} <= history
            weights = [w for _, w in pairs]
            assert weights == sorted(weights, reverse=True) and all(w > 0 for w in weights)
            cited_any |= bool(pairs)
    assert cited_any


def test_score_intervals_or_a_clear_refusal(fitted: RecModel) -> None:
    ids, _ = fitted.recommend(np.arange(3), k=5)
    if not fitted.supports_uncertainty:
        with pytest.raises(NotImplementedError, match="no score intervals"):
            fitted.score_intervals(0, ids[0], 0.9)
        return
    for user in range(3):
        scores = fitted.score_items(user, ids[user])
        low, high = fitted.score_intervals(user, ids[user], 0.9)
        assert np.all(low < scores) and np.all(scores < high)
        low50, high50 = fitted.score_intervals(user, ids[user], 0.5)
        assert np.all(high50 - low50 < high - low)
