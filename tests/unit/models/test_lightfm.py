"""LightFM specifics: cold items through metadata features, loss selection, persistence limits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from hydra.utils import instantiate
from tests.conftest import dataset_from_matrix

from recops.config import compose
from recops.errors import ConfigError
from recops.features.build import build_item_features
from recops.features.dataset import Dataset
from recops.models.base import load_model
from recops.models.lightfm import LightFMModel

N_PER_GROUP = 8
COLD_A, COLD_B = 2 * N_PER_GROUP, 2 * N_PER_GROUP + 1  # catalogue items nobody interacted with
A_ITEMS = np.arange(N_PER_GROUP)
A_USERS, B_USERS = np.arange(20), np.arange(20, 40)


@pytest.fixture
def two_categories() -> Dataset:
    """Users 0..19 like category-a items 0..7, users 20..39 category-b items 8..15 (6 of 8
    each); items 16 (a) and 17 (b) are in the catalogue with metadata but no interactions."""
    rng = np.random.default_rng(0)
    dense = np.zeros((40, 2 * N_PER_GROUP + 2), dtype=np.float32)
    for u in range(40):
        group = A_ITEMS if u in A_USERS else A_ITEMS + N_PER_GROUP
        dense[u, rng.choice(group, 6, replace=False)] = 1.0
    categories = ["a"] * N_PER_GROUP + ["b"] * N_PER_GROUP + ["a", "b"]
    dataset = dataset_from_matrix(sp.csr_matrix(dense), categories)
    features, names = build_item_features(dataset.item_meta, {"categorical": ["category"]})
    dataset.item_features, dataset.item_feature_names = features, names
    return dataset


@pytest.mark.parametrize("loss", ["warp", "bpr"])
def test_cold_item_is_similar_to_its_category(two_categories: Dataset, loss: str) -> None:
    model = LightFMModel(loss=loss).fit(two_categories)
    # 7 other a-items + the cold a-item fill the top 8 of every a-item: no b-item among them
    ids, _ = model.similar_items(A_ITEMS, k=N_PER_GROUP)
    assert all(COLD_A in row for row in ids)
    assert not np.isin(ids, np.arange(N_PER_GROUP, 2 * N_PER_GROUP)).any()


@pytest.mark.parametrize("loss", ["warp", "bpr"])
def test_cold_item_is_recommended_to_its_category_fans_only(
    two_categories: Dataset, loss: str
) -> None:
    model = LightFMModel(loss=loss).fit(two_categories)
    # each user lacks 2 items of their category: with the cold item of it, that is the top 3
    ids, _ = model.recommend(np.arange(two_categories.n_users), k=3)
    assert all(COLD_A in row for row in ids[A_USERS])
    assert not any(COLD_A in row for row in ids[B_USERS])
    assert all(COLD_B in row for row in ids[B_USERS])


def test_without_item_features_cold_items_are_not_placed(two_categories: Dataset) -> None:
    model = LightFMModel(use_item_features=False).fit(two_categories)
    ids, _ = model.similar_items(A_ITEMS, k=N_PER_GROUP)
    assert sum(COLD_A in row for row in ids) < len(A_ITEMS)


def test_item_feature_matrix_drops_the_id_of_cold_items(two_categories: Dataset) -> None:
    features, n_meta = LightFMModel().item_feature_matrix(two_categories)
    n_items = two_categories.n_items
    assert features.shape == (n_items, n_items + n_meta) and n_meta == 2
    np.testing.assert_allclose(np.asarray(features.sum(axis=1)).ravel(), 1.0, rtol=1e-6)
    identity = features[:, :n_items].diagonal()
    assert identity[COLD_A] == 0 and identity[COLD_B] == 0
    np.testing.assert_allclose(identity[:COLD_A], 0.5)


def test_new_item_scored_from_metadata_alone(two_categories: Dataset) -> None:
    model = LightFMModel().fit(two_categories)
    category_a = sp.csr_matrix(np.array([[1.0, 0.0]], dtype=np.float32))  # "category=a"
    scores = model.score_cold_items(np.arange(two_categories.n_users), category_a)[:, 0]
    assert scores[A_USERS].min() > scores[B_USERS].max()
    with pytest.raises(ValueError, match="feature columns"):
        model.represent_items(sp.csr_matrix((1, 5), dtype=np.float32))


def test_user_features_train_and_score(two_categories: Dataset) -> None:
    model = LightFMModel(use_user_features=True).fit(two_categories)
    ids, _ = model.recommend(A_USERS, k=3)
    assert all(COLD_A in row for row in ids)


def test_works_without_item_features(checkerboard: tuple[Dataset, np.ndarray]) -> None:
    dataset, withheld = checkerboard
    assert dataset.item_features is None
    model = LightFMModel(use_user_features=True).fit(dataset)
    ids, _ = model.recommend(np.arange(dataset.n_users), k=1)
    np.testing.assert_array_equal(ids[:, 0], withheld)


@pytest.mark.parametrize("loss", ["warp", "bpr", "logistic"])
def test_loss_is_selected_from_config(two_categories: Dataset, loss: str) -> None:
    cfg = compose(["model=lightfm", f"model.loss={loss}", "model.epochs=2"])
    model = instantiate(cfg.model, _convert_="all").fit(two_categories)
    assert isinstance(model, LightFMModel) and model.loss == loss
    assert model._estimator is not None and model._estimator.loss == loss
    ids, scores = model.recommend(np.arange(5), k=3)
    assert (ids >= 0).all() and np.isfinite(scores).all()


def test_unknown_loss_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"model\.loss"):
        LightFMModel(loss="hinge")


def test_capabilities() -> None:
    caps = LightFMModel.capabilities()
    assert caps == {"cold_items": True, "few_interaction_users": True, "new_users": False}
    assert LightFMModel.supports_cold_items


def test_loaded_model_scores_cold_items_but_cannot_continue_training(
    two_categories: Dataset, tmp_path: Path
) -> None:
    model = LightFMModel(epochs=5).fit(two_categories)
    model.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    assert isinstance(loaded, LightFMModel)
    new_item = sp.csr_matrix(np.array([[0.0, 1.0]], dtype=np.float32))
    np.testing.assert_allclose(
        loaded.score_cold_items(B_USERS, new_item), model.score_cold_items(B_USERS, new_item)
    )
    with pytest.raises(RuntimeError, match="call fit"):
        loaded.fit_partial(two_categories, 1)
