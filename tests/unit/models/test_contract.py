"""The model contract, run over every model configured in conf/model/."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hydra.utils import instantiate

from recops.config import compose
from recops.errors import UnknownIdError
from recops.features.dataset import Dataset
from recops.models.base import RecModel, load_model, model_class
from recops.models.spark_als import spark_missing

MODEL_NAMES = sorted(p.stem for p in (Path(__file__).parents[3] / "conf" / "model").glob("*.yaml"))
#: Options that change how a model scores run the whole contract too ("<model> <overrides>").
VARIANTS = [
    "ease model.recency_half_life=2",
    "itemknn model.recency_half_life=2",
    "slist model.recency_half_life=null",
]
#: Models on an engine: what they need, and the overrides the tests run them with (Spark on
#: two local cores; the session is started once per test process and shared).
ENGINES = {
    "spark_als": (
        spark_missing,
        ["spark.master='local[2]'", "model.iterations=5"],
    )
}


def build(spec: str, **overrides: object) -> RecModel:
    name, *extra = spec.split()
    if name in ENGINES:
        missing, engine_overrides = ENGINES[name]
        if (reason := missing()) is not None:
            pytest.skip(f"{name}: {reason}")
        extra = [*engine_overrides, *extra]
    cfg = compose([f"model={name}", *extra, *(f"model.{k}={v}" for k, v in overrides.items())])
    model = instantiate(cfg.model, _convert_="all")
    assert isinstance(model, RecModel)
    if hasattr(model, "show_progress"):
        model.show_progress = False
    return model


@pytest.fixture(params=MODEL_NAMES + VARIANTS)
def name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_every_model_config_builds_a_recmodel(name: str) -> None:
    model = build(name)
    assert model.model_type
    assert model_class(model.get_config()["_target_"]) is type(model)


def test_recommend_shapes_and_exclude_seen(name: str, random_dataset: Dataset) -> None:
    model = build(name).fit(random_dataset)
    users = np.arange(random_dataset.n_users)
    ids, scores = model.recommend(users, k=5)
    assert ids.shape == scores.shape == (len(users), 5)
    seen = random_dataset.user_items
    for u in users:
        valid = ids[u][ids[u] >= 0]
        assert not set(valid) & set(seen[u].indices), f"user {u} got seen items"
        assert np.all(np.diff(scores[u][ids[u] >= 0]) <= 1e-6), "scores not descending"


def test_item_filters(name: str, random_dataset: Dataset) -> None:
    model = build(name).fit(random_dataset)
    blocked = np.arange(0, 10)
    ids, _ = model.recommend(np.arange(5), k=5, filter_items=blocked)
    assert not set(ids.ravel()) & set(blocked)
    allowed = np.arange(20, 40)
    ids, _ = model.recommend(np.arange(5), k=5, exclude_seen=False, allowed_items=allowed)
    assert set(ids[ids >= 0].ravel()) <= set(allowed)


def test_similar_items_excludes_the_query(name: str, random_dataset: Dataset) -> None:
    model = build(name).fit(random_dataset)
    ids, _scores = model.similar_items(np.array([0, 3]), k=4)
    assert ids.shape == (2, 4)
    assert 0 not in ids[0] and 3 not in ids[1]


def test_scores_handed_out_are_the_callers_to_write(name: str, random_dataset: Dataset) -> None:
    """`recommend` masks seen items in the scored block in place: `_score_users` must hand
    out a new array or a read-only view, never the model's own writable state."""
    model = build(name).fit(random_dataset)
    users = np.arange(random_dataset.n_users)
    want = np.array(model._score_users(users), dtype=np.float64)
    first = model.recommend(users, 5)
    scores = model._score_users(users)
    if np.asarray(scores).flags.writeable:
        np.asarray(scores)[...] = -1.0
    np.testing.assert_array_equal(np.asarray(model._score_users(users), dtype=np.float64), want)
    for a, b in zip(first, model.recommend(users, 5), strict=True):
        np.testing.assert_array_equal(a, b)


def test_save_load_round_trip_gives_same_recommendations(
    name: str, random_dataset: Dataset, tmp_path: Path
) -> None:
    model = build(name).fit(random_dataset)
    model.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    assert type(loaded) is type(model)
    users = np.arange(random_dataset.n_users)
    for a, b in zip(model.recommend(users, 10), loaded.recommend(users, 10), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(
        model.similar_items(np.arange(5), 3)[0], loaded.similar_items(np.arange(5), 3)[0]
    )


def test_refit_with_same_seed_is_deterministic(name: str, random_dataset: Dataset) -> None:
    users = np.arange(random_dataset.n_users)
    first = build(name).fit(random_dataset).recommend(users, 10)
    second = build(name).fit(random_dataset).recommend(users, 10)
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_allclose(first[1], second[1], rtol=1e-5)


def test_config_round_trip(name: str) -> None:
    model = build(name)
    twin = instantiate(model.get_config(), _convert_="all")
    assert type(twin) is type(model)
    assert twin.get_params() == model.get_params()


def test_unknown_user_index_is_a_clear_error(name: str, random_dataset: Dataset) -> None:
    model = build(name).fit(random_dataset)
    with pytest.raises(UnknownIdError, match="out of range"):
        model.recommend(np.array([random_dataset.n_users + 3]), k=3)


def test_unfitted_model_says_so(name: str) -> None:
    with pytest.raises(RuntimeError, match="not fitted"):
        build(name).recommend(np.array([0]), k=3)


def test_checkerboard_withheld_item_is_recommended_first(
    name: str, checkerboard: tuple[Dataset, np.ndarray]
) -> None:
    dataset, withheld = checkerboard
    model = build(name).fit(dataset)
    ids, _ = model.recommend(np.arange(dataset.n_users), k=1)
    if model.personalized:
        np.testing.assert_array_equal(ids[:, 0], withheld)
    else:  # one ranking for all: each user's top item is the most popular one they lack
        popularity = dataset.item_popularity().astype(float)
        unseen = np.where(dataset.user_items.toarray() > 0, -np.inf, popularity)
        assert np.all(popularity[ids[:, 0]] == unseen.max(axis=1))


def test_top_k_is_exact_under_ties() -> None:
    from recops.models.base import top_k

    scores = np.array([[1.0, 3.0, 3.0, 3.0, 0.5, -np.inf], [2.0, 2.0, 2.0, 2.0, 2.0, 2.0]])
    ids, vals = top_k(scores, 3)
    assert ids.tolist() == [[1, 2, 3], [0, 1, 2]]
    ids, vals = top_k(scores[:1], 8)  # more than there are: -inf and missing slots are padding
    assert ids.tolist() == [[1, 2, 3, 0, 4, -1, -1, -1]]
    assert np.isnan(vals[0, 5:]).all()


def test_iterative_models_continue_training(name: str, random_dataset: Dataset) -> None:
    model = build(name)
    if model.epochs_param is None:
        with pytest.raises(NotImplementedError):
            model.fit_partial(random_dataset, 1)
        return
    users = np.arange(random_dataset.n_users)
    model.fit_partial(random_dataset, 1)
    after_one = model.recommend(users, 10)[1]
    model.fit_partial(random_dataset, 3)
    after_four = model.recommend(users, 10)[1]
    assert not np.allclose(after_one, after_four, equal_nan=True), "fit_partial did not train"
    assert (model.recommend(users, 10)[0] >= 0).any()
