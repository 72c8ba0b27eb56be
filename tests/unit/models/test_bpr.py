"""BPR: implicit's bias column is part of the score, exactly as implicit scores."""

from __future__ import annotations

import numpy as np
from implicit.cpu.bpr import BayesianPersonalizedRanking

from recops.features.dataset import Dataset
from recops.models.bpr import BPRModel


def fitted(dataset: Dataset, **params: object) -> BPRModel:
    return BPRModel(factors=8, iterations=20, show_progress=False, **params).fit(dataset)


def test_factors_carry_implicits_bias_column(random_dataset: Dataset) -> None:
    users, items = fitted(random_dataset)._factors()
    assert users.shape == (random_dataset.n_users, 9)
    assert items.shape == (random_dataset.n_items, 9)
    np.testing.assert_array_equal(users[:, -1], 1.0)  # so user·item includes the item bias
    assert np.abs(items[:, -1]).max() > 0


def test_scores_equal_implicits_recommend(random_dataset: Dataset) -> None:
    model = fitted(random_dataset)
    implicit_model = BayesianPersonalizedRanking(factors=8)
    implicit_model.user_factors, implicit_model.item_factors = model._factors()
    users = np.array([0, 5, 17, 42])
    liked = random_dataset.user_items[users]
    their_ids, their_scores = implicit_model.recommend(users, liked, N=10)
    ids, scores = model.recommend(users, k=10)
    np.testing.assert_array_equal(ids, their_ids)
    np.testing.assert_allclose(scores, their_scores, rtol=1e-5)


def test_implicits_own_initialisation_is_available(random_dataset: Dataset) -> None:
    model = BPRModel(factors=8, iterations=0, init_std=None, show_progress=False)
    _, items = model.fit(random_dataset)._factors()
    assert np.abs(items).max() <= 0.5 / 8  # implicit: uniform in ±0.5/factors


def test_successive_fit_partial_calls_draw_fresh_samples(random_dataset: Dataset) -> None:
    """implicit reseeds from an int random_state on every fit call; the model must not."""
    model = BPRModel(factors=8, show_progress=False)
    model.fit_partial(random_dataset, 1)
    model.fit_partial(random_dataset, 1)
    before = [f.copy() for f in model._factors()]
    replay = BayesianPersonalizedRanking(factors=8, iterations=1, num_threads=1, random_state=42)
    replay.user_factors, replay.item_factors = (f.copy() for f in before)
    replay.fit(random_dataset.user_items, show_progress=False)  # what a reseeded epoch does
    model.fit_partial(random_dataset, 1)
    assert not np.array_equal(model._factors()[1], replay.item_factors)
