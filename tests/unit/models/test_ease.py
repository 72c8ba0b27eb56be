"""EASE: the closed form on a hand-computed example, and the capacity guard."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import scipy.sparse as sp
from tests.conftest import dataset_from_matrix

from recops.errors import ModelCapacityError
from recops.features.dataset import Dataset
from recops.models import ease
from recops.models.ease import EASEModel

# 3 users x 3 items: G = XᵀX = [[2,1,0],[1,2,1],[0,1,1]]; with λ = 1, G + I has determinant 13
# and inverse P = [[5,-2,1],[-2,6,-3],[1,-3,8]] / 13, so B_ij = -P_ij / P_jj is:
X = np.array([[1, 1, 0], [0, 1, 1], [1, 0, 0]], dtype=np.float32)
EXPECTED_B = np.array(
    [
        [0.0, 2 / 6, -1 / 8],
        [2 / 5, 0.0, 3 / 8],
        [-1 / 5, 3 / 6, 0.0],
    ]
)


def fitted(matrix: np.ndarray, **params: object) -> EASEModel:
    return EASEModel(regularization=1.0, **params).fit(dataset_from_matrix(sp.csr_matrix(matrix)))


def test_closed_form_matches_hand_computed_solution() -> None:
    model = fitted(X)
    assert model.weights is not None and model.weights.dtype == np.float32
    np.testing.assert_allclose(model.weights, EXPECTED_B, atol=1e-6)


def test_scores_are_the_users_row_times_b() -> None:
    ids, scores = fitted(X).recommend(np.array([2]), k=2)  # user 2 has only item 0
    assert ids.tolist() == [[1, 2]]
    np.testing.assert_allclose(scores[0], [1 / 3, -1 / 8], rtol=1e-6)


def test_similar_items_are_rows_of_b() -> None:
    ids, scores = fitted(X).similar_items(np.array([0]), k=2)
    assert ids.tolist() == [[1, 2]]
    np.testing.assert_allclose(scores[0], [1 / 3, -1 / 8], rtol=1e-6)


def test_binarize_ignores_weights_unless_disabled() -> None:
    weighted = X * np.array([[3.0], [1.0], [2.0]], dtype=np.float32)
    np.testing.assert_allclose(fitted(weighted).weights, EXPECTED_B, atol=1e-6)
    raw = fitted(weighted, binarize=False).weights
    assert raw is not None and not np.allclose(raw, EXPECTED_B, atol=1e-3)


def test_oversize_catalogue_is_refused_before_allocating(
    random_dataset: Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    def must_not_run(*args: object) -> np.ndarray:
        raise AssertionError("EASE allocated the item matrices before checking capacity")

    monkeypatch.setattr(ease, "ease_weights", must_not_run)
    with pytest.raises(ModelCapacityError) as excinfo:
        EASEModel(max_items=5).fit(random_dataset)
    message = str(excinfo.value)
    assert "40 items" in message and "model.max_items=5" in message
    assert "GiB" in message and "model.max_items=40" in message  # how to raise it


def test_warns_above_half_the_limit(
    random_dataset: Dataset, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="recops.models.ease"):
        EASEModel(max_items=60).fit(random_dataset)
    assert "max_items=60" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="recops.models.ease"):
        EASEModel(max_items=100).fit(random_dataset)
    assert not caplog.text
