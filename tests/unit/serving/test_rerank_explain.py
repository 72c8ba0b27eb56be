"""MMR diversity, explanations and score intervals on /recommend (served model level), and
the precomputed table with intervals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recops.features.dataset import Dataset
from recops.models.als import ALSModel
from recops.models.bpr import BPRModel
from recops.models.recommender import Recommender
from recops.serving import precompute
from recops.serving.config import ServeConfig
from recops.serving.errors import BadRequestError
from recops.serving.refs import ModelRef
from recops.serving.rerank import mmr
from recops.serving.served import Query, ServedModel

from .conftest import LIGHT_USERS, world

REF = ModelRef("m", "1", "champion", "registry")


@pytest.fixture
def served(recommender: Recommender, cfg: ServeConfig) -> ServedModel:
    return ServedModel(REF, recommender, cfg)


def ids_of(answer: object) -> list[str]:
    return [x["item_id"] for x in answer.items]  # type: ignore[attr-defined]


def test_mmr_with_zero_diversity_is_the_plain_ranking() -> None:
    rng = np.random.default_rng(0)
    candidates = rng.permutation(50)
    scores = rng.normal(size=50).astype(np.float32)
    scores[[3, 9]] = scores[4]  # ties: lower item index first
    similarity = rng.random((50, 50))
    plain = np.lexsort((candidates, -scores))[:10]
    np.testing.assert_array_equal(mmr(candidates, scores, similarity, 0.0, 10), plain)


def test_zero_diversity_answers_equal_plain_answers(served: ServedModel) -> None:
    for user in ("u10", "u11", "u40"):
        plain = served.answer(Query(user, 6))
        zero = served.answer(Query(user, 6, diversity=0.0))
        assert ids_of(zero) == ids_of(plain)
        assert [x["score"] for x in zero.items] == [x["score"] for x in plain.items]


def test_diversity_lowers_the_similarity_within_the_list(served: ServedModel) -> None:
    def mean_similarity(answer: object) -> float:
        idx = np.array([served.item_index[i] for i in ids_of(answer)])
        sim = served.model.item_similarity(idx)
        return float(sim[~np.eye(len(idx), dtype=bool)].mean())

    plain, diverse = [], []
    for user in (f"u{i}" for i in range(10, 40)):
        plain.append(mean_similarity(served.answer(Query(user, 5))))
        answer = served.answer(Query(user, 5, diversity=0.7))
        assert answer.diversity == 0.7 and len(answer.items) == 5
        assert not set(ids_of(answer)) & {
            served.recommender.items.external_ids[i]
            for i in served.history(served.user_index[user])
        }
        diverse.append(mean_similarity(answer))
    assert np.mean(diverse) < np.mean(plain)


def test_explanations_cite_only_the_users_history(served: ServedModel) -> None:
    external = served.recommender.items.external_ids
    for user in ("u10", "u25", "u61"):
        answer = served.answer(Query(user, 5, explain=True))
        history = {str(external[i]) for i in served.history(served.user_index[user])}
        cited = [c["item_id"] for item in answer.items for c in item["because"]]
        assert cited and set(cited) <= history
        assert '"because":[' in answer.items_json


def test_fallback_answers_carry_null_explanations(served: ServedModel) -> None:
    answer = served.answer(Query(LIGHT_USERS[0], 3, explain=True, uncertainty=True))
    assert answer.source == "fallback"
    assert all(x["because"] is None and x["score_low"] is None for x in answer.items)


def test_intervals_contain_the_score(served: ServedModel) -> None:
    answer = served.answer(Query("u10", 5, uncertainty=True))
    for item in answer.items:
        assert item["score_low"] < item["score"] < item["score_high"]


def test_intervals_widen_for_users_with_less_history(recommender: Recommender) -> None:
    """The same user, the same item factors: cutting the history (a subset of the items)
    can only widen every interval (the ridge system loses positive terms)."""
    model = recommender.model
    assert isinstance(model, ALSModel)
    items = np.arange(model.n_items)
    for user in range(10, 20):
        full = model.score_std(user, items)
        seen = model.seen.tolil(copy=True)
        keep = seen.rows[user][:2]
        seen.rows[user], seen.data[user] = keep, seen.data[user][:2]
        cut = ALSModel(**model.get_params())
        cut._seen = seen.tocsr()
        cut.user_factors, cut.item_factors = model.user_factors, model.item_factors
        less = cut.score_std(user, items)
        assert np.all(less >= full - 1e-9) and np.mean(less) > np.mean(full)
    # across users: light users (1 interaction) get wider intervals than heavy ones (8)
    widths = {u: float(np.mean(model.score_std(u, items))) for u in range(model.n_users)}
    light = np.mean([widths[u] for u in range(len(LIGHT_USERS))])
    heavy = np.mean([widths[u] for u in range(len(LIGHT_USERS), model.n_users)])
    assert light > heavy


def test_unsupported_capabilities_are_a_clear_bad_request(cfg: ServeConfig) -> None:
    dataset: Dataset = world(0)
    bpr = BPRModel(factors=4, iterations=5, show_progress=False).fit(dataset)
    served = ServedModel(REF, Recommender.from_training(bpr, dataset, dataset.events), cfg)
    with pytest.raises(BadRequestError, match=r"uncertainty: true is not supported .*bpr") as err:
        served.answer(Query("u10", 5, uncertainty=True))
    assert err.value.status == 400
    assert served.answer(Query("u10", 5, explain=True)).items[0]["because"] is not None


def test_precomputed_table_in_row_groups_with_intervals(
    recommender: Recommender, cfg: ServeConfig, tmp_path: Path
) -> None:
    import pyarrow.parquet as pq

    path = tmp_path / "pre.parquet"
    meta = {"model_name": "m", "version": "1", "k": 6}
    cov = precompute.write_chunked(recommender, path, meta, 3, 6, level=0.9, size=7)
    assert cov["precomputed_users"] == 85
    assert pq.ParquetFile(path).metadata.num_row_groups == 13  # ceil(85 / 7)
    table = pq.read_table(path).to_pandas()
    one_shot = precompute.compute(recommender, 3, 6)
    assert table["item_ids"].map(list).tolist() == one_shot["item_ids"].map(list).tolist()
    pre = precompute.load(path, recommender, "m", "1")
    served = ServedModel(REF, recommender, cfg, pre)
    answer = served.answer(Query("u10", 5, uncertainty=True))
    assert answer.precomputed
    live = ServedModel(REF, recommender, cfg).answer(Query("u10", 5, uncertainty=True))
    assert ids_of(answer) == ids_of(live)
    for a, b in zip(answer.items, live.items, strict=True):
        assert a["score_low"] == pytest.approx(b["score_low"], rel=1e-4)
        assert a["score_high"] == pytest.approx(b["score_high"], rel=1e-4)


def test_configured_diversity_is_the_default_and_the_warm_key(recommender: Recommender) -> None:
    from recops.serving.engine import Engine, Slots

    from .conftest import make_cfg, shipped_part

    cfg = make_cfg(rerank=shipped_part("rerank", diversity=0.4))
    model = ServedModel(REF, recommender, cfg)
    assert model.warm() > 0
    engine = Engine(cfg, lambda: Slots(model), lambda: "")
    q = engine.query(model.most_active_users(1)[0])
    assert q.diversity == 0.4 and engine.recommend(q).cached
    off = Engine(
        make_cfg(rerank=shipped_part("rerank", enabled=False, diversity=0.4)),
        lambda: Slots(model),
        str,
    )
    assert off.query("u10", diversity=0.9).diversity == 0.0
