"""What serving relies on in the model layer: recent item activity in the saved recommender
(backward compatible), the fast seen mask and the fast (still tie-exact) top-k."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recops.columns import Columns
from recops.features.activity import ItemActivity
from recops.features.dataset import Dataset
from recops.models.als import ALSModel
from recops.models.base import _mask_rows, _top_k_mask, top_k
from recops.models.recommender import Recommender


def events_for(dataset: Dataset) -> pd.DataFrame:
    coo = dataset.user_items.tocoo()
    days = np.where(coo.col == 0, 30.0, 1.0)  # item 0 is the only recent one
    return pd.DataFrame(
        {
            Columns.user_idx: coo.row,
            Columns.item_idx: coo.col,
            Columns.timestamp: pd.Timestamp("2024-01-01") + pd.to_timedelta(days, "D"),
        }
    )


def test_activity_from_events(random_dataset: Dataset) -> None:
    events = events_for(random_dataset)
    activity = ItemActivity.from_events(events, random_dataset.n_items, window_days=7)
    assert activity is not None
    assert activity.recent_popularity[0] == (random_dataset.user_items[:, 0] > 0).sum()
    assert activity.recent_popularity[1:].sum() == 0
    assert activity.until == activity.last_seen[0]
    assert ItemActivity.from_events(events.iloc[:0], 40) is None


def test_saved_with_activity_and_old_artifacts_still_load(
    random_dataset: Dataset, tmp_path: Path
) -> None:
    model = ALSModel(factors=4, iterations=3, show_progress=False).fit(random_dataset)
    rec = Recommender.from_training(model, random_dataset, events_for(random_dataset))
    rec.save(tmp_path / "new")
    loaded = Recommender.load(tmp_path / "new")
    assert loaded.activity is not None and loaded.activity.window_days == 14
    np.testing.assert_array_equal(loaded.activity.recent_popularity, rec.activity.recent_popularity)
    assert "recent_popularity" not in loaded.item_meta
    # an artifact written before activity existed
    old = tmp_path / "old"
    rec.save(old)
    info = json.loads((old / "recommender.json").read_text())
    info.pop("activity")
    (old / "recommender.json").write_text(json.dumps(info))
    items = pd.read_parquet(old / "items.parquet").drop(columns=["recent_popularity", "last_seen"])
    items.to_parquet(old / "items.parquet", index=False)
    assert Recommender.load(old).activity is None


def test_seen_mask_matches_row_slicing() -> None:
    rng = np.random.default_rng(0)
    seen = sp.random(50, 30, density=0.2, format="csr", random_state=1, dtype=np.float32)
    users = rng.integers(0, 50, size=17)  # with repeats
    fast = np.zeros((len(users), 30), np.float32)
    _mask_rows(fast, seen, users)
    slow = np.zeros((len(users), 30), np.float32)
    _mask_rows(slow, seen[users])
    np.testing.assert_array_equal(fast, slow)
    assert np.isinf(fast).sum() == seen[users].nnz


def reference_top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """The plain definition: mask of the k best (lowest index among ties), then sort."""
    n_rows, n_cols = scores.shape
    kk = min(k, n_cols)
    part = np.nonzero(_top_k_mask(scores, kk))[1].reshape(n_rows, kk)
    vals = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -vals), axis=1)
    ids = np.take_along_axis(part, order, axis=1)
    ids[~np.isfinite(np.take_along_axis(vals, order, axis=1))] = -1
    return np.pad(ids, ((0, 0), (0, max(0, k - n_cols))), constant_values=-1)


def test_fast_top_k_equals_the_reference_with_ties_and_padding() -> None:
    rng = np.random.default_rng(3)
    for _ in range(500):
        rows = int(rng.integers(1, 4))
        scores = rng.integers(0, 5, size=(rows, 12)).astype(np.float32)
        scores[rng.random(scores.shape) < 0.3] = -np.inf
        k = int(rng.integers(1, 15))
        ids, vals = top_k(scores, k)
        assert ids.shape == vals.shape == (rows, k)
        np.testing.assert_array_equal(ids, reference_top_k(scores, k))
    smooth = rng.random((1, 300)).astype(np.float32)
    np.testing.assert_array_equal(top_k(smooth, 9)[0], reference_top_k(smooth, 9))
