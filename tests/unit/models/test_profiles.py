"""Recency-weighted profiles: the decay on a hand-computed history, and what it changes."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from tests.conftest import dataset_from_matrix

from recops.columns import Columns
from recops.errors import ConfigError
from recops.features.dataset import Dataset
from recops.models.ease import EASEModel
from recops.models.itemknn import ItemKNNModel
from recops.models.profiles import recency_decay


def events(rows: list[tuple[int, int, str]]) -> pd.DataFrame:
    users, items, stamps = zip(*rows, strict=True)
    return pd.DataFrame(
        {
            Columns.user_idx: np.array(users, dtype=np.int32),
            Columns.item_idx: np.array(items, dtype=np.int32),
            Columns.timestamp: pd.to_datetime(list(stamps)),
        }
    )


def test_decay_counts_later_events_and_shares_ties() -> None:
    # user 0: item 0 (day 1), item 1 (day 2), items 2 and 3 together (day 3), item 0 again
    # (day 0, older than its day-1 event); user 1: one item.
    history = events(
        [
            (0, 0, "2024-01-01"),
            (0, 1, "2024-01-02"),
            (0, 2, "2024-01-03"),
            (0, 3, "2024-01-03"),
            (0, 0, "2023-12-31"),
            (1, 1, "2024-01-05"),
        ]
    )
    decay = recency_decay(history, (2, 4), half_life=2.0).toarray()
    # item 0's latest event has 3 later ones, item 1's has 2, items 2 and 3 none.
    np.testing.assert_allclose(decay[0], [0.5**1.5, 0.5, 1.0, 1.0], rtol=1e-6)
    np.testing.assert_allclose(decay[1], [0.0, 1.0, 0.0, 0.0])


def test_half_life_must_be_positive() -> None:
    with pytest.raises(ConfigError, match="recency_half_life must be > 0"):
        recency_decay(events([(0, 0, "2024-01-01")]), (1, 1), half_life=0.0)


def two_tastes() -> Dataset:
    """Items 0-2 and 3-5 are two tastes (many users hold one each); user 0 liked items 0 and 1
    long ago and only item 3 recently."""
    dense = np.zeros((41, 6), dtype=np.float32)
    dense[1:21, 0:3] = 1.0
    dense[21:41, 3:6] = 1.0
    dense[0, [0, 1, 3]] = 1.0
    dataset = dataset_from_matrix(sp.csr_matrix(dense))
    assert dataset.events is not None
    latest = dataset.events[Columns.timestamp].max()
    recent = (dataset.events[Columns.user_idx] == 0) & (dataset.events[Columns.item_idx] == 3)
    frame = dataset.events.copy()
    frame.loc[recent, Columns.timestamp] = latest + pd.Timedelta(days=1)
    return dataclasses.replace(dataset, events=frame)


@pytest.mark.parametrize("model_cls", [EASEModel, ItemKNNModel], ids=lambda cls: cls.model_type)
def test_recent_taste_wins_only_with_decay(model_cls: type) -> None:
    dataset = two_tastes()
    extra = {"regularization": 1.0} if model_cls is EASEModel else {"show_progress": False}
    plain = model_cls(**extra).fit(dataset)
    recent = model_cls(recency_half_life=0.5, **extra).fit(dataset)
    assert plain.recommend(np.array([0]), k=1)[0][0, 0] == 2  # two old items outvote one
    assert recent.recommend(np.array([0]), k=1)[0][0, 0] in (4, 5)
    assert recent.requires_events and not plain.requires_events


def test_missing_or_mismatched_events_are_clear_errors(random_dataset: Dataset) -> None:
    with pytest.raises(ConfigError, match="needs the training events"):
        EASEModel(recency_half_life=5).fit(dataclasses.replace(random_dataset, events=None))
    assert random_dataset.events is not None
    partial = dataclasses.replace(random_dataset, events=random_dataset.events.iloc[1:])
    with pytest.raises(ConfigError, match="do not cover the same"):
        EASEModel(recency_half_life=5).fit(partial)


def test_decay_that_underflows_keeps_its_entry() -> None:
    # 300 later events at half-life 1: 0.5 ** 300 is 0 in float32, yet the pair is still a pair
    rows = [(0, i, f"2024-01-01 00:{i // 60:02d}:{i % 60:02d}") for i in range(301)]
    dense = np.ones((1, 301), dtype=np.float32)
    dataset = dataclasses.replace(dataset_from_matrix(sp.csr_matrix(dense)), events=events(rows))
    model = EASEModel(regularization=1.0, recency_half_life=1.0).fit(dataset)
    assert model._decay is not None and model._decay[0, 0] == 0.0 and model._decay[0, 300] == 1.0
