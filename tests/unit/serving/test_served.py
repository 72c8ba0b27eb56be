"""One served model version: model vs fallback, filters, rerank, precomputed, similar."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recops.models.recommender import Recommender
from recops.serving import precompute
from recops.serving.config import ServeConfig
from recops.serving.errors import UnknownItemError
from recops.serving.refs import ModelRef
from recops.serving.served import Query, ServedModel

from .conftest import LIGHT_USERS

REF = ModelRef("m", "1", "champion", "registry")


@pytest.fixture
def served(recommender: Recommender, cfg: ServeConfig) -> ServedModel:
    return ServedModel(REF, recommender, cfg)


def test_known_users_get_the_model_with_metadata(served: ServedModel) -> None:
    answer = served.answer(Query("u10", 5))
    assert answer.source == "model" and len(answer.items) == 5
    first = answer.items[0]
    assert set(first) >= {"item_id", "score", "rank", "title", "category", "brand", "price", "tags"}
    assert [x["rank"] for x in answer.items] == [1, 2, 3, 4, 5]
    seen = set(served.history(served.user_index["u10"]).tolist())
    assert not seen & {served.item_index[x["item_id"]] for x in answer.items}


def test_brand_new_and_light_users_get_the_fallback(served: ServedModel) -> None:
    new = served.answer(Query("brand-new-user", 4))
    assert new.source == "fallback" and len(new.items) == 4
    light = served.answer(Query(LIGHT_USERS[0], 4))
    assert light.source == "fallback"
    touched = served.history(served.user_index[LIGHT_USERS[0]])
    assert not {served.item_index[x["item_id"]] for x in light.items} & set(touched.tolist())


def test_fallback_follows_what_a_new_user_touched(served: ServedModel) -> None:
    context = served.answer(Query("newcomer", 6, recent_item_ids=("i2", "i5", "unknown")))
    plain = served.answer(Query("newcomer", 6))
    assert context.source == plain.source == "fallback"
    assert not {"i2", "i5"} & {x["item_id"] for x in context.items}

    # only items 0..5 were used recently: popularity alone can only offer those, the content
    # part brings in other "tools" items like the ones the newcomer touched
    assert {x["item_id"] for x in plain.items} <= {f"i{j}" for j in range(6)}
    assert any(x["category"] == "tools" and int(x["item_id"][1:]) >= 6 for x in context.items)


def test_filters(served: ServedModel) -> None:
    only = served.answer(Query("u10", 5, categories=("games",)))
    assert only.items and {x["category"] for x in only.items} == {"games"}
    top = served.answer(Query("u10", 2)).items[0]["item_id"]
    without = served.answer(Query("u10", 5, exclude_item_ids=(top,)))
    assert top not in {x["item_id"] for x in without.items}
    assert served.answer(Query("u10", 5, categories=("no-such",))).items == []
    assert served.answer(Query("nobody", 5, categories=("no-such",))).items == []


def test_rerank_changes_scores_not_membership_rules(served: ServedModel) -> None:
    plain = served.answer(Query("u10", 5))
    reranked = served.answer(Query("u10", 5, rerank=True))
    assert reranked.reranked and reranked.source == "model" and len(reranked.items) == 5
    assert not plain.reranked


def test_precomputed_answers_the_default_request(
    recommender: Recommender, cfg: ServeConfig, tmp_path: Path
) -> None:
    table = precompute.compute(recommender, cfg.min_history, 6)
    path = tmp_path / "pre.parquet"
    precompute.write(table, path, {"model_name": "m", "version": "1", "k": 6})
    pre = precompute.load(path, recommender, "m", "1")
    served = ServedModel(REF, recommender, cfg, pre)
    hit = served.answer(Query("u10", 5))
    assert hit.precomputed and hit.source == "model"
    plain = ServedModel(REF, recommender, cfg).answer(Query("u10", 5))
    assert [x["item_id"] for x in hit.items] == [x["item_id"] for x in plain.items]
    assert not served.answer(Query("u10", 7)).precomputed  # beyond the precomputed k
    assert not served.answer(Query("u10", 5, categories=("books",))).precomputed


def test_similar_and_unknown_item(served: ServedModel) -> None:
    items = served.similar("i0", 3)
    assert len(items) == 3 and "i0" not in {x["item_id"] for x in items}
    with pytest.raises(UnknownItemError, match="unknown item id 'nope'"):
        served.similar("nope", 3)


def test_warm_fills_the_cache_and_info(served: ServedModel) -> None:
    assert served.warm() == 5 and len(served.cache) == 5
    user = served.most_active_users(1)[0]
    assert served.cache.get(served.default_query(user)) is not None
    info = served.info()
    assert info["n_users"] == 90 and info["n_items"] == 30 and info["model_type"] == "als"
    assert info["score_range"]["min"] <= info["score_range"]["max"]
    assert info["trained_until"].startswith("2024-03-30")
    assert np.isfinite(info["score_range"]["max"])
