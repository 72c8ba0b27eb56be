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


def test_padded_frame_aligns_columns_of_different_lengths() -> None:
    frame = padded_frame({"a": np.arange(3.0), "b": np.array(["x"], dtype=object)})
    assert len(frame) == 3 and frame["b"].isna().sum() == 2
