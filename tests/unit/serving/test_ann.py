"""ANN search: exact filters and exclude-seen, equality with exact search where the index is
exhaustive, widening and exact fallback, config errors, and what /model_info reports."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import scipy.sparse as sp

from recops.errors import ConfigError
from recops.models.als import ALSModel
from recops.models.recommender import Recommender
from recops.serving.ann import AnnSearch, ExactSearch, build_search
from recops.serving.config import AnnConfig, ServeConfig
from recops.serving.refs import ModelRef
from recops.serving.served import Query, ServedModel

from .conftest import shipped_cfg, shipped_values

NONE = np.zeros(0, np.int64)


def ann_config(**changes: object) -> AnnConfig:
    """The shipped `serve.ann`, with `changes`."""
    return replace(shipped_cfg().ann, **changes)  # type: ignore[arg-type]


def factor_model(n_users: int = 60, n_items: int = 3000, dim: int = 8, seed: int = 0) -> ALSModel:
    """An ALS model with clustered random factors and 30 seen items per user."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 1, (20, dim))
    items = centers[rng.integers(0, 20, n_items)] + 0.3 * rng.normal(0, 1, (n_items, dim))
    users = centers[rng.integers(0, 20, n_users)] + 0.3 * rng.normal(0, 1, (n_users, dim))
    rows = np.repeat(np.arange(n_users), 30)
    cols = rng.integers(0, n_items, rows.size)
    seen = sp.csr_matrix((np.ones(rows.size, np.float32), (rows, cols)), (n_users, n_items))
    model = ALSModel(factors=dim, show_progress=False)
    model._seen = seen
    model.user_factors = users.astype(np.float32)
    model.item_factors = items.astype(np.float32)
    return model


def history(model: ALSModel, user: int) -> set[int]:
    seen = model.seen
    return set(seen.indices[seen.indptr[user] : seen.indptr[user + 1]].tolist())


@pytest.fixture(scope="module")
def model() -> ALSModel:
    return factor_model()


def approximate(model: ALSModel, **changes: object) -> AnnSearch:
    """A deliberately coarse index (few lists probed) so that recall is below 1."""
    cfg = ann_config(min_items=100, nlist=60, nprobe=1, candidates=5, **changes)
    search = build_search(model, cfg)
    assert isinstance(search, AnnSearch)
    return search


def test_ann_never_returns_seen_blocked_or_disallowed_items(model: ALSModel) -> None:
    search = approximate(model)
    rng = np.random.default_rng(1)
    for user in range(model.n_users):
        blocked = rng.choice(model.n_items, 200, replace=False)
        allowed = rng.choice(model.n_items, 2500, replace=False)  # >= min_items: ANN path
        for exclude_seen in (True, False):
            ids, scores = search.recommend(user, 20, exclude_seen, blocked, allowed)
            assert len(ids) == 20 and len(set(ids.tolist())) == 20
            assert not set(ids.tolist()) & set(blocked.tolist())
            assert set(ids.tolist()) <= set(allowed.tolist())
            if exclude_seen:
                assert not set(ids.tolist()) & history(model, user)
            assert np.all(np.diff(scores) <= 0)
    # the coarse index did miss items (so the test exercised approximate retrieval)
    exact = ExactSearch(model, "test")
    misses = sum(
        set(search.recommend(u, 10, True, NONE, None)[0].tolist())
        != set(exact.recommend(u, 10, True, NONE, None)[0].tolist())
        for u in range(model.n_users)
    )
    assert misses > 0


def test_ann_equals_exact_when_every_list_is_probed() -> None:
    model = factor_model(n_users=40, n_items=400, seed=3)
    search = build_search(model, ann_config(min_items=100, nlist=8, nprobe=8))
    exact = ExactSearch(model, "test")
    assert isinstance(search, AnnSearch)
    blocked = np.arange(0, 400, 7)
    for user in range(model.n_users):
        for args in ((True, NONE, None), (False, blocked, None), (True, blocked, None)):
            got_ids, got_scores = search.recommend(user, 15, *args)
            want_ids, want_scores = exact.recommend(user, 15, *args)
            np.testing.assert_array_equal(got_ids, want_ids)
            np.testing.assert_allclose(got_scores, want_scores, rtol=1e-5, atol=1e-6)


def test_small_allow_lists_are_scored_exactly(model: ALSModel) -> None:
    search = approximate(model)
    exact = ExactSearch(model, "test")
    allowed = np.arange(10, 60)  # below min_items
    got = search.recommend(3, 10, True, np.array([11, 12]), allowed)
    want = exact.recommend(3, 10, True, np.array([11, 12]), allowed)
    np.testing.assert_array_equal(got[0], want[0])
    assert search.info()["exact_allow_list"] >= 1


def test_too_few_survivors_widen_then_fall_back_to_exact(model: ALSModel) -> None:
    search = approximate(model, max_rounds=2)
    exact = ExactSearch(model, "test")
    keep = np.array([5, 900, 1800, 2999])
    blocked = np.setdiff1d(np.arange(model.n_items), keep)  # only 4 items may be shown
    got = search.recommend(0, 10, False, blocked, None)
    want = exact.recommend(0, 10, False, blocked, None)
    np.testing.assert_array_equal(got[0], want[0])
    assert set(got[0].tolist()) <= set(keep.tolist())
    info = search.info()
    assert info["widened"] >= 1 and info["exact_fallbacks"] >= 1


def test_exact_below_the_threshold_and_for_models_without_vectors(model: ALSModel) -> None:
    small = build_search(model, ann_config(min_items=10_000))
    assert isinstance(small, ExactSearch) and "serve.ann.min_items=10000" in small.reason
    off = build_search(model, ann_config(enabled=False, min_items=1))
    assert isinstance(off, ExactSearch) and "enabled is false" in off.reason


@pytest.mark.parametrize(
    ("ann", "key"),
    [
        ({"nprobe": 0}, "serve.ann.nprobe"),
        ({"nlist": 0}, "serve.ann.nlist"),
        ({"min_items": -5}, "serve.ann.min_items"),
        ({"candidates": "many"}, "serve.ann.candidates"),
        ({"enabled": "yes"}, "serve.ann.enabled"),
        ({"nprobes": 3}, "serve.ann"),
    ],
)
def test_bad_ann_settings_name_the_key(ann: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        ServeConfig.from_mapping(shipped_values({"ann": ann}))
    message = str(err.value)
    assert key in message and "\n" not in message


def test_model_info_says_which_search(recommender: Recommender, cfg: ServeConfig) -> None:
    ref = ModelRef("m", "1", "champion", "registry")
    exact = ServedModel(ref, recommender, cfg)
    assert exact.info()["search"]["search"] == "exact"
    ann_cfg = cfg.replace(ann=ann_config(min_items=10))
    ann = ServedModel(ref, recommender, ann_cfg)
    info = ann.info()["search"]
    assert info["search"] == "ann" and info["library"].startswith("faiss")
    # 30 items -> nlist 5, nprobe 5: exhaustive, so the served answers equal exact ones
    for user in ("u10", "u20", "u33"):
        for q in (Query(user, 5), Query(user, 5, categories=("games",)), Query(user, 8, False)):
            assert [x["item_id"] for x in ann.answer(q).items] == [
                x["item_id"] for x in exact.answer(q).items
            ]
