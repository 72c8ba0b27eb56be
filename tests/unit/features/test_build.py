from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recops.columns import Columns
from recops.errors import ConfigError
from recops.features.build import build_item_features, build_split, event_weights
from recops.features.dataset import SplitData
from recops.features.split import GlobalTimeSplit, TimeSplit

WEIGHTS = {"view": 1.0, "cart": 3.0, "purchase": 5.0}


def frame(rows: list[tuple[str, str, int, str]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            Columns.user: [r[0] for r in rows],
            Columns.item: [r[1] for r in rows],
            Columns.timestamp: pd.to_datetime([r[2] for r in rows], unit="D"),
            Columns.event_type: [r[3] for r in rows],
            Columns.value: np.nan,
            Columns.weight: 1.0,
        }
    )


def test_event_weights_multiply_type_and_row_weight() -> None:
    ev = frame([("a", "x", 1, "view"), ("a", "x", 2, "purchase"), ("a", "y", 3, "unknown")])
    ev.loc[1, Columns.weight] = 2.0
    np.testing.assert_allclose(event_weights(ev, WEIGHTS, 0.5), [1.0, 10.0, 0.5])
    with pytest.raises(ConfigError, match=r"event_weights\.view"):
        event_weights(ev, {"view": -1.0}, 1.0)


def test_matrix_sums_weights_and_test_drops_unseen_items_and_seen_pairs() -> None:
    ev = frame(
        [
            ("a", "x", 1, "view"),
            ("a", "x", 2, "cart"),
            ("a", "y", 3, "view"),
            ("a", "z", 4, "view"),  # a's test: z (z is in b's train)
            ("b", "z", 1, "view"),
            ("b", "y", 2, "view"),
            ("b", "x", 3, "view"),
            ("b", "new", 4, "view"),  # b's test: an item never seen in training -> dropped
            ("c", "y", 1, "view"),
            ("c", "y", 9, "purchase"),  # c's test: y again -> seen pair
        ]
    )
    split = build_split(ev, None, TimeSplit(0.25), WEIGHTS)
    train = split.train
    assert list(train.users.external_ids) == ["a", "b", "c"]
    ui = train.user_items.toarray()
    a, x = train.users.lookup(["a"])[0], train.items.lookup(["x"])[0]
    assert ui[a, x] == pytest.approx(4.0)  # view 1 + cart 3
    assert split.test[Columns.user].tolist() == ["a"]
    assert split.stats["n_test_pairs_dropped_unseen_item"] == 1
    assert split.stats["n_test_pairs_dropped_seen_in_train"] == 1


def test_cold_users_are_kept_apart() -> None:
    ev = frame([("a", "x", 1, "view"), ("a", "y", 2, "view"), ("b", "x", 10, "view")])
    split = build_split(ev, None, GlobalTimeSplit(0.34), WEIGHTS)
    assert split.cold_test()[Columns.user].tolist() == ["b"]
    assert split.stats["n_test_users_cold"] == 1


def test_catalogue_items_without_interactions_get_an_index_and_features() -> None:
    ev = frame([("a", "x", 1, "view"), ("a", "y", 2, "view"), ("b", "x", 3, "view")])
    items = pd.DataFrame(
        {
            Columns.item: ["x", "y", "fresh"],
            Columns.title: ["Red Shoe", "Blue Shoe", "Red Hat"],
            Columns.category: ["shoes", "shoes", "hats"],
            Columns.brand: ["acme", None, "acme"],
            Columns.price: [1.0, 2.0, 3.0],
            Columns.tags: ["summer|sale", "sale", None],
        }
    )
    cfg = {"categorical": ["category", "brand"], "tokens": ["tags", "title"], "min_token_count": 1}
    split = build_split(ev, items, TimeSplit(0.2), WEIGHTS, item_feature_cfg=cfg)
    assert "fresh" in split.train.items
    assert split.train.item_popularity()[split.train.items.lookup(["fresh"])[0]] == 0
    names = split.train.item_feature_names
    assert {"category=hats", "brand=acme", "tags=sale", "title=red"} <= set(names)


def test_item_features_min_token_count() -> None:
    meta = pd.DataFrame({Columns.item: ["a", "b"], Columns.title: ["red shoe", "red hat"]})
    matrix, names = build_item_features(meta, {"tokens": ["title"], "min_token_count": 2})
    assert names == ["title=red"]
    assert matrix is not None and matrix.toarray().tolist() == [[1.0], [1.0]]


def test_split_round_trip(tmp_path: Path) -> None:
    ev = frame(
        [
            ("a", "x", 1, "view"),
            ("a", "y", 2, "view"),
            ("b", "x", 3, "view"),
            ("b", "y", 4, "view"),
            ("a", "z", 5, "view"),
            ("b", "z", 0, "view"),
        ]
    )
    split = build_split(ev, None, TimeSplit(0.3), WEIGHTS)
    split.save(tmp_path)
    loaded = SplitData.load(tmp_path)
    assert (loaded.train.user_items != split.train.user_items).nnz == 0
    pd.testing.assert_frame_equal(loaded.test, split.test)
    assert loaded.stats == split.stats
    before, after = split.train.activity, loaded.train.activity
    assert before is not None and after is not None
    np.testing.assert_array_equal(after.recent_popularity, before.recent_popularity)
    np.testing.assert_array_equal(after.last_seen, before.last_seen)
    assert (after.window_days, after.until) == (before.window_days, before.until)


def test_item_activity_is_computed_on_the_training_events() -> None:
    # days 0..9 train for both users (test: each user's last event); window 3 days before day 8
    ev = frame(
        [("a", "x", 0, "view"), ("a", "y", 6, "view"), ("a", "z", 8, "view"),
         ("b", "x", 1, "view"), ("b", "y", 7, "view"), ("b", "z", 9, "view")]
    )  # fmt: skip
    catalogue = pd.DataFrame({Columns.item: ["x", "y", "z"]})
    split = build_split(ev, catalogue, TimeSplit(0.3), WEIGHTS, recent_days=3.0)
    activity = split.train.activity
    assert activity is not None and activity.window_days == 3.0
    order = split.train.items.to_internal(["x", "y", "z"])
    # the last training event is b/y on day 7: x was last used on day 1, y on day 7
    assert activity.until == pd.Timestamp(7, unit="D").timestamp()
    np.testing.assert_array_equal(activity.recent_popularity[order], [0, 2, 0])
    assert activity.last_seen[order][0] == pd.Timestamp(1, unit="D").timestamp()
    assert np.isnan(activity.last_seen[order][2])  # z is only in the test part (catalogue)


def test_empty_snapshot_is_refused() -> None:
    with pytest.raises(ConfigError, match="no events"):
        build_split(frame([]), None, TimeSplit(), WEIGHTS)


def test_validation_split_carves_from_train_only() -> None:
    from recops.features.build import validation_split

    # 4 users x 8 items, each user's order rotated so validation items are known to training
    rows = [(f"u{r}", f"i{(j + 2 * r) % 8}", j, "view") for r in range(4) for j in range(8)]
    split = build_split(frame(rows), None, TimeSplit(0.34), WEIGHTS)
    val = validation_split(split, TimeSplit(0.25))
    assert val.train.items is split.train.items and val.train.users is split.train.users
    assert val.train.user_items.sum() < split.train.user_items.sum()
    held = set(zip(val.test[Columns.user], val.test[Columns.item_idx], strict=True))
    tested = set(zip(split.test[Columns.user], split.test[Columns.item_idx], strict=True))
    assert held and not held & tested
    for user, item in held:  # validation pairs come from the training matrix
        assert split.train.user_items[split.train.users.lookup([user])[0], item] > 0
