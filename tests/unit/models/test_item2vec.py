"""Item2vec specifics: sessions from time-ordered events, co-occurrence similarity, fallbacks."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from tests.conftest import dataset_from_matrix

from recops.columns import Columns
from recops.features.dataset import Dataset
from recops.models.item2vec import (
    NO_VECTOR_SCORE,
    Item2VecModel,
    ordered_events,
    recent_history,
    split_sessions,
)

T0 = pd.Timestamp("2024-03-01 12:00")


def _events(rows: list[tuple[int, int, pd.Timedelta]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            Columns.user_idx: np.array([r[0] for r in rows], dtype=np.int32),
            Columns.item_idx: np.array([r[1] for r in rows], dtype=np.int32),
            Columns.timestamp: [T0 + r[2] for r in rows],
            Columns.weight: np.ones(len(rows), dtype=np.float32),
        }
    )


def test_sessions_follow_time_order_and_split_at_gaps() -> None:
    minutes, days = pd.Timedelta(minutes=1), pd.Timedelta(days=1)
    events = _events(  # deliberately not in time order
        [
            (0, 3, 0 * minutes),
            (1, 7, 0 * minutes),
            (0, 1, 20 * minutes),
            (0, 2, 5 * minutes),
            (0, 4, 3 * days),
            (1, 8, 30 * minutes),
            (0, 5, 3 * days + minutes),
            (1, 9, 5 * days),  # alone after a gap: a one-item session, dropped
        ]
    )
    sessions = split_sessions(ordered_events(events), gap_minutes=60 * 24)
    assert [s.tolist() for s in sessions] == [[3, 2, 1], [4, 5], [7, 8]]
    one_hour = split_sessions(ordered_events(events), gap_minutes=60)
    assert [s.tolist() for s in one_hour] == [[3, 2, 1], [4, 5], [7, 8]]
    ten_minutes = split_sessions(ordered_events(events), gap_minutes=10)
    assert [s.tolist() for s in ten_minutes] == [[3, 2], [4, 5]]  # 1 came 15 min after 2


def test_recent_history_weights_the_latest_items_most() -> None:
    events = _events([(0, i, pd.Timedelta(minutes=i)) for i in range(5)] + [(1, 9, T0 - T0)])
    history = recent_history(ordered_events(events), (2, 10), recent_items=3, decay=0.5)
    row = history[0].toarray().ravel()
    np.testing.assert_allclose(row[[4, 3, 2]], np.array([1.0, 0.5, 0.25]) / 1.75, rtol=1e-6)
    assert row[:2].sum() == 0  # older than the 3 most recent
    assert history[1].toarray().ravel()[9] == pytest.approx(1.0)


@pytest.fixture
def two_clusters() -> Dataset:
    """Sessions mix items 0..3 together or items 4..7 together, never across; item 8 exists
    in the catalogue but is never interacted with."""
    rng = np.random.default_rng(1)
    dense = np.zeros((60, 9), dtype=np.float32)
    for u in range(60):
        cluster = np.arange(4) if u % 2 == 0 else np.arange(4, 8)
        dense[u, rng.choice(cluster, 3, replace=False)] = 1.0
    return dataset_from_matrix(sp.csr_matrix(dense))


def test_similar_items_are_the_co_occurring_ones(two_clusters: Dataset) -> None:
    model = Item2VecModel().fit(two_clusters)
    ids, scores = model.similar_items(np.arange(8), k=3)
    for item, row in enumerate(ids):
        cluster = set(range(4)) if item < 4 else set(range(4, 8))
        assert set(row) == cluster - {item}, f"item {item}: {row}"
    assert np.all(scores <= 1.0 + 1e-5)


def test_items_without_a_vector_rank_last(two_clusters: Dataset) -> None:
    model = Item2VecModel().fit(two_clusters)
    assert not model.item_factors[8].any()  # type: ignore[index]
    ids, _ = model.recommend(np.arange(two_clusters.n_users), k=6, exclude_seen=False)
    assert 8 not in ids[:, :5]
    sims, sim_scores = model.similar_items(np.array([0]), k=8)
    assert sims[0, -1] == 8 and sim_scores[0, -1] == NO_VECTOR_SCORE


def test_user_vectors_follow_their_cluster(two_clusters: Dataset) -> None:
    model = Item2VecModel().fit(two_clusters)
    ids, _ = model.recommend(np.arange(two_clusters.n_users), k=1)
    in_cluster = np.where(np.arange(len(ids)) % 2 == 0, ids[:, 0] < 4, ids[:, 0] >= 4)
    assert in_cluster.all()


def test_falls_back_to_the_matrix_without_events(
    two_clusters: Dataset, caplog: pytest.LogCaptureFixture
) -> None:
    two_clusters.events = None
    with caplog.at_level(logging.WARNING, logger="recops.models.item2vec"):
        model = Item2VecModel().fit(two_clusters)
    assert "no events" in caplog.text
    ids, _ = model.similar_items(np.array([0, 5]), k=3)
    assert set(ids[0]) == {1, 2, 3} and set(ids[1]) == {4, 6, 7}


def test_non_deterministic_mode_trains_with_workers(two_clusters: Dataset) -> None:
    model = Item2VecModel(workers=2, deterministic=False).fit(two_clusters)
    ids, _ = model.similar_items(np.array([0]), k=3)
    assert set(ids[0]) == {1, 2, 3}
    assert model.get_params()["workers"] == 2
