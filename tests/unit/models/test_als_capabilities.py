"""ALS explanations agree with implicit's own `explain`; the noise variance of the score
intervals equals the dense computation."""

from __future__ import annotations

import numpy as np

from recops.features.dataset import Dataset
from recops.models.als import ALSModel


def fitted(dataset: Dataset) -> ALSModel:
    return ALSModel(factors=6, iterations=5, alpha=3.0, show_progress=False).fit(dataset)


def test_explain_agrees_with_implicit(random_dataset: Dataset) -> None:
    model = fitted(random_dataset)
    reference = model.build_estimator()
    reference.user_factors, reference.item_factors = model.user_factors, model.item_factors
    items = np.arange(0, 40, 3)
    for user in range(0, 60, 7):
        ours = model.explain(user, items, 4)
        for item, pairs in zip(items.tolist(), ours, strict=True):
            _, theirs, _ = reference.explain(0, model.seen[user], item, N=4)
            expected = [(int(j), float(v)) for j, v in theirs if v > 0]
            assert [j for j, _ in pairs] == [j for j, _ in expected]
            np.testing.assert_allclose([v for _, v in pairs], [v for _, v in expected], rtol=1e-4)


def test_noise_variance_equals_the_dense_weighted_residual(random_dataset: Dataset) -> None:
    model = fitted(random_dataset)
    x, y = model.user_factors.astype(float), model.item_factors.astype(float)
    r = model.seen.toarray()
    p = (r > 0).astype(float)
    c = np.where(r > 0, model.alpha * r, 1.0)
    dense = float((c * (p - x @ y.T) ** 2).mean())
    _, noise = model._posterior_parts()
    assert noise == np.float64(dense) or abs(noise - dense) < 1e-9 * max(dense, 1)
