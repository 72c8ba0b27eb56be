"""Erasing a user from a fitted model, run over every model config like the contract: the
user is gone from the id map and every per-user array, everyone else is served exactly as
before, the redacted model saves and loads; popularity is recounted exactly; the capability
says which models keep shared parameters learned from the user."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recops.features.dataset import Dataset, SplitData
from recops.gdpr.files import redact_split
from recops.models.base import RecModel
from recops.models.recommender import Recommender

from ..models.test_contract import MODEL_NAMES, VARIANTS, build

GONE = "u7"


@pytest.fixture(params=MODEL_NAMES + VARIANTS)
def recommender(request: pytest.FixtureRequest, random_dataset: Dataset) -> Recommender:
    model = build(str(request.param)).fit(random_dataset)
    return Recommender.from_training(model, random_dataset)


def test_redacted_model_serves_everyone_else_unchanged(
    recommender: Recommender, tmp_path: Path
) -> None:
    redacted, removed = recommender.without_users([GONE, "not-a-user"])
    assert removed == 1 and GONE not in redacted.users
    assert len(redacted.users) == len(recommender.users) - 1
    assert redacted.model.seen.shape[0] == len(redacted.users)
    others = [u for u in recommender.users.external_ids.tolist() if u != GONE]
    before = recommender.recommend(others, k=5)
    after = redacted.recommend(others, k=5)
    if recommender.model.personalized:  # popularity is recounted instead (test below)
        np.testing.assert_array_equal(before["item_id"], after["item_id"])
        np.testing.assert_allclose(before["score"], after["score"], rtol=1e-5, atol=1e-6)
    redacted.save(tmp_path / "r")
    loaded = Recommender.load(tmp_path / "r")
    assert GONE not in loaded.users
    pd_after = loaded.recommend(others[:5], k=5)
    np.testing.assert_array_equal(pd_after["item_id"], after["item_id"][: len(pd_after)])
    # nothing to remove: the same object back
    same, none = redacted.without_users([GONE])
    assert none == 0 and same is redacted


def test_per_user_arrays_shrink(recommender: Recommender) -> None:
    redacted, _ = recommender.without_users([GONE])
    for name in ("user_factors", "user_biases", "_decay"):
        array = getattr(redacted.model, name, None)
        if array is not None:
            assert array.shape[0] == len(redacted.users), name


def test_popularity_is_recounted_exactly(random_dataset: Dataset) -> None:
    model = build("popularity").fit(random_dataset)
    rec = Recommender.from_training(model, random_dataset)
    redacted, _ = rec.without_users([GONE])
    keep = np.flatnonzero(random_dataset.users.external_ids != GONE)
    refit = build("popularity").fit(
        Dataset(
            users=random_dataset.users,
            items=random_dataset.items,
            user_items=random_dataset.user_items[keep],
            item_meta=random_dataset.item_meta,
        )
    )
    np.testing.assert_array_equal(redacted.model.popularity, refit.popularity)
    np.testing.assert_array_equal(redacted.popularity, refit.popularity)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_erasure_capability(name: str) -> None:
    """Models with item-item parameters learned from users need a retrain after an erasure."""
    model: RecModel = build(name)
    expected = "redact" if name in ("als", "spark_als", "bpr", "popularity") else "retrain"
    assert type(model).erasure == expected


def test_split_redaction_reindexes_matrix_events_and_test(random_dataset: Dataset) -> None:
    import pandas as pd

    from recops.columns import Columns

    users = random_dataset.users.external_ids
    test = pd.DataFrame(
        {
            Columns.user: [users[3], GONE, users[20], "cold-1"],
            Columns.user_idx: [3, 7, 20, -1],
            Columns.item_idx: [1, 2, 3, 4],
        }
    )
    split = SplitData(random_dataset, test, {"n_users": 60})
    redacted, removed = redact_split(split, GONE)
    train = redacted.train
    assert removed > 1 and GONE not in train.users and train.user_items.shape[0] == 59
    assert redacted.stats == split.stats  # the registry still finds this holdout
    np.testing.assert_array_equal(
        train.user_items[19].toarray(), random_dataset.user_items[20].toarray()
    )
    assert redacted.test[Columns.user].tolist() == [users[3], users[20], "cold-1"]
    assert redacted.test[Columns.user_idx].tolist() == [3, 19, -1]
    events = train.events
    assert events is not None and events[Columns.user_idx].max() == 58
    original = random_dataset.events
    assert original is not None
    assert len(events) == len(original) - int((original[Columns.user_idx] == 7).sum())
