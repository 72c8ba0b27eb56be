from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recops.columns import Columns
from recops.monitoring.features import event_features, padded_frame, session_lengths
from recops.monitoring.frames import EventWindow

T0 = pd.Timestamp("2024-01-01")


def _events(rows: list[tuple[str, str, int, str]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            Columns.user: [r[0] for r in rows],
            Columns.item: [r[1] for r in rows],
            Columns.timestamp: [T0 + pd.Timedelta(minutes=r[2]) for r in rows],
            Columns.event_type: [r[3] for r in rows],
        }
    )


def test_sessions_split_on_gaps_and_users() -> None:
    events = _events(
        [("u1", "a", 0, "view"), ("u1", "b", 10, "view"), ("u1", "c", 100, "view"),
         ("u2", "a", 5, "view"), ("u1", "d", 105, "cart")]
    )  # fmt: skip
    lengths = session_lengths(events, pd.Timedelta(minutes=30))
    assert sorted(lengths.tolist()) == [1.0, 2.0, 2.0]


def test_event_features_new_items_metadata_and_scale_free_activity() -> None:
    items = pd.DataFrame(
        {Columns.item: ["a", "b"], Columns.category: ["x", "y"], Columns.price: [1.0, 2.0]}
    )
    events = _events([("u1", "a", 0, "view"), ("u1", "b", 1, "view"), ("u2", "c", 2, "view")])
    cols = event_features(EventWindow("w", events, items), {"a", "b"}, pd.Timedelta(minutes=30))
    assert cols["new_items"].tolist() == ["known", "known", "new"]
    assert cols["category"][:2].tolist() == ["x", "y"] and pd.isna(cols["category"][2])
    assert cols["price"][:2].tolist() == [1.0, 2.0]
    # 2 and 1 events against a mean of 1.5: doubling every user's activity changes nothing
    assert np.sort(cols["user_activity"]) == pytest.approx(np.log1p([1 / 1.5, 2 / 1.5]))
    reference = event_features(EventWindow("r", events, items), None, pd.Timedelta(minutes=30))
    assert set(reference["new_items"]) == {"known"}


def test_categorical_sides_give_the_same_features_as_plain_ones() -> None:
    events = _events(
        [("u1", "a", 0, "view"), ("u1", "b", 1, "view"), ("u2", "c", 50, "cart"),
         ("u3", "d", 200, "view")]
    )  # fmt: skip
    coded = events.astype({Columns.user: "category", Columns.item: "category"})
    coded = coded.iloc[:3]  # a window: the categories still list the dropped row's values
    gap = pd.Timedelta(minutes=30)
    plain_cols = event_features(EventWindow("p", events.iloc[:3], None), {"a"}, gap)
    coded_cols = event_features(EventWindow("c", coded, None), {"a"}, gap)
    for name, values in plain_cols.items():
        pd.testing.assert_series_equal(pd.Series(values), pd.Series(coded_cols[name]), obj=name)


def test_padded_frame_aligns_columns_of_different_lengths() -> None:
    frame = padded_frame({"a": np.arange(3.0), "b": np.array(["x"], dtype=object)})
    assert len(frame) == 3 and frame["b"].isna().sum() == 2


def test_long_feature_columns_are_a_seeded_sample_and_counts_use_every_event() -> None:
    rows = [(f"u{i % 50}", f"i{i % 7}", i, "view" if i % 3 else "cart") for i in range(600)]
    side = EventWindow("w", _events(rows), None)
    gap = pd.Timedelta(minutes=30)
    full = event_features(side, None, gap, max_values=None)
    capped = event_features(side, None, gap, max_values=100, seed=1)
    assert len(full["event_type"]) == 600 and len(capped["event_type"]) == 100
    assert len(capped["user_activity"]) == len(full["user_activity"]) == 50  # under the cap
    again = event_features(side, None, gap, max_values=100, seed=1)
    assert capped["event_type"].tolist() == again["event_type"].tolist()
    share = np.mean(capped["event_type"] == "cart")
    assert abs(share - np.mean(full["event_type"] == "cart")) < 0.15
