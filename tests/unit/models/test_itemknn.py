"""Item-item KNN: every similarity option, the option dispatch, and parity with implicit."""

from __future__ import annotations

import numpy as np
import pytest

from recops.errors import ConfigError
from recops.features.dataset import Dataset
from recops.models.itemknn import SIMILARITIES, ItemKNNModel


def fitted(similarity: str, dataset: Dataset, k_neighbours: int = 100) -> ItemKNNModel:
    model = ItemKNNModel(similarity, k_neighbours=k_neighbours, num_threads=1, show_progress=False)
    return model.fit(dataset)


@pytest.mark.parametrize("similarity", sorted(SIMILARITIES))
def test_each_similarity_finds_the_withheld_item(
    similarity: str, checkerboard: tuple[Dataset, np.ndarray]
) -> None:
    dataset, withheld = checkerboard
    ids, _ = fitted(similarity, dataset).recommend(np.arange(dataset.n_users), k=1)
    np.testing.assert_array_equal(ids[:, 0], withheld)


@pytest.mark.filterwarnings("ignore::implicit.utils.ParameterWarning")
@pytest.mark.parametrize("similarity", sorted(SIMILARITIES))
def test_scores_match_implicits_own_recommend(similarity: str, random_dataset: Dataset) -> None:
    model = fitted(similarity, random_dataset)
    estimator = model.build_estimator()
    estimator.fit(random_dataset.user_items, show_progress=False)
    users = np.arange(8)
    _, theirs = estimator.recommend(users, random_dataset.user_items[users], N=5)
    _, ours = model.recommend(users, k=5)
    np.testing.assert_allclose(ours, theirs, rtol=1e-5)


def test_k_neighbours_bounds_each_items_neighbours(random_dataset: Dataset) -> None:
    model = fitted("cosine", random_dataset, k_neighbours=7)
    assert model.similarity_matrix is not None
    assert np.diff(model.similarity_matrix.indptr).max() <= 7


def test_unknown_similarity_lists_the_options() -> None:
    with pytest.raises(ConfigError, match="'jaccard'") as excinfo:
        ItemKNNModel(similarity="jaccard")
    assert all(name in str(excinfo.value) for name in SIMILARITIES)
