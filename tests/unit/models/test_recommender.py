from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recops.columns import Columns
from recops.errors import UnknownIdError
from recops.features.dataset import Dataset
from recops.models.als import ALSModel
from recops.models.recommender import Recommender


@pytest.fixture
def recommender(checkerboard: tuple[Dataset, np.ndarray]) -> Recommender:
    dataset, _ = checkerboard
    model = ALSModel(factors=4, iterations=20, show_progress=False, random_state=0)
    return Recommender.from_training(model.fit(dataset), dataset)


def test_recommend_in_external_ids(
    recommender: Recommender, checkerboard: tuple[Dataset, np.ndarray]
) -> None:
    _, withheld = checkerboard
    recs = recommender.recommend(["u0", "u11"], k=3)
    assert list(recs.columns) == [Columns.user, Columns.item, Columns.score, Columns.rank]
    top = recs[recs[Columns.rank] == 1].set_index(Columns.user)[Columns.item]
    assert top["u0"] == f"i{withheld[0]}" and top["u11"] == f"i{withheld[11]}"


def test_unknown_user_error_names_the_id(recommender: Recommender) -> None:
    with pytest.raises(UnknownIdError, match=r"unknown user id\(s\) \['stranger'\]"):
        recommender.recommend(["u0", "stranger"], k=3)


def test_unknown_user_gets_popular_items_on_request(recommender: Recommender) -> None:
    recs = recommender.recommend(["stranger"], k=3, on_unknown="popular")
    assert len(recs) == 3
    popular = recommender.items.to_external(np.argsort(-recommender.popularity, kind="stable")[:3])
    assert set(recs[Columns.item]) == set(popular)


def test_exclude_items_by_external_id(recommender: Recommender) -> None:
    recs = recommender.recommend(["u0"], k=6, exclude_seen=False, exclude_items=["i0", "i1"])
    assert not {"i0", "i1"} & set(recs[Columns.item])


def test_similar_items(recommender: Recommender) -> None:
    sims = recommender.similar_items(["i0"], k=3)
    assert set(sims[Columns.item]) <= {f"i{j}" for j in range(1, 6)}  # same taste group
    with pytest.raises(UnknownIdError, match="unknown item id"):
        recommender.similar_items(["nope"], k=3)


def test_save_load(recommender: Recommender, tmp_path: Path) -> None:
    recommender.save(tmp_path / "rec")
    loaded = Recommender.load(tmp_path / "rec")
    users = [f"u{i}" for i in range(20)]
    assert loaded.recommend(users, 5).equals(recommender.recommend(users, 5))
    with pytest.raises(FileNotFoundError, match="not a saved recops recommender"):
        Recommender.load(tmp_path)
