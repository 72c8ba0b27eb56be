"""SLIST: known answers on tiny time-ordered worlds (the chain it must continue, the closed
form against a per-column solve, alpha = 1 is EASE) and its input checks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from tests.conftest import dataset_from_matrix

from recops.columns import Columns
from recops.errors import ConfigError, ModelCapacityError
from recops.features.dataset import Dataset
from recops.models import slist
from recops.models.ease import EASEModel
from recops.models.slist import SLISTModel, transition_matrices, user_sequences


def sequence_dataset(sequences: list[list[int]], n_items: int) -> Dataset:
    """One user per sequence; its items one minute apart in the given order."""
    rows = [u for u, seq in enumerate(sequences) for _ in seq]
    cols = [i for seq in sequences for i in seq]
    matrix = sp.csr_matrix(
        (np.ones(len(cols), dtype=np.float32), (rows, cols)), shape=(len(sequences), n_items)
    )
    dataset = dataset_from_matrix(matrix)
    dataset.events = pd.DataFrame(
        {
            Columns.user_idx: np.asarray(rows, dtype=np.int32),
            Columns.item_idx: np.asarray(cols, dtype=np.int32),
            Columns.timestamp: pd.Timestamp("2024-01-01")
            + pd.to_timedelta(np.arange(len(cols)), "min"),
            Columns.weight: np.ones(len(cols), dtype=np.float32),
        }
    )
    return dataset


def cycle_windows(n_items: int, length: int, reverse: bool = False) -> list[list[int]]:
    """Every window of `length` consecutive items of the cycle 0 -> 1 -> ... -> n-1 -> 0."""
    windows = [[(s + k) % n_items for k in range(length)] for s in range(n_items)]
    return [w[::-1] for w in windows] if reverse else windows


def test_continues_a_chain_where_co_occurrence_is_symmetric() -> None:
    # On a cycle every item co-occurs as often with its predecessors as with its successors:
    # for a user who saw 2 then 3, EASE ties 1 (before) and 4 (after); only order breaks it.
    n = 8
    query = [[2, 3]]
    forward = sequence_dataset(cycle_windows(n, 3) * 3 + query, n)
    user = np.array([forward.n_users - 1])
    ease = EASEModel(regularization=1.0).fit(forward)
    before, after = ease.score_items(int(user[0]), np.array([1, 4]))
    assert before == pytest.approx(after, rel=1e-4)
    scores = SLISTModel(regularization=1.0, alpha=0.2, recency_half_life=None).fit(forward)
    assert (
        scores.score_items(int(user[0]), np.array([4]))[0]
        > scores.score_items(int(user[0]), np.array([1]))[0]
    )
    ids, _ = scores.recommend(user, k=2)
    assert ids[0].tolist() == [4, 5]  # the next items of the chain, in order
    # The same sets of items in the opposite time order: the model must follow it.
    backward = sequence_dataset(cycle_windows(n, 3, reverse=True) * 3 + [[3, 2]], n)
    ids, _ = (
        SLISTModel(regularization=1.0, alpha=0.2, recency_half_life=None)
        .fit(backward)
        .recommend(user, k=2)
    )
    assert ids[0].tolist() == [1, 0]


def test_strict_chain_is_continued_from_the_latest_item() -> None:
    # Users who walked A -> B -> C -> D -> E (prefixes of it); one has only reached C.
    chain = [0, 1, 2, 3, 4]
    users = [chain[:k] for k in range(2, 6)] * 4 + [[0, 1, 2]]
    model = SLISTModel(regularization=1.0, alpha=0.1, recency_half_life=2.0)
    ids, _ = model.fit(sequence_dataset(users, 5)).recommend(np.array([len(users) - 1]), k=2)
    assert ids[0].tolist() == [3, 4]


def test_transition_rows_by_hand() -> None:
    # user 0: a, b, b (repeat collapses), c; user 1: c, a. Events stored out of time order.
    events = pd.DataFrame(
        {
            Columns.user_idx: [0, 1, 0, 0, 0, 1],
            Columns.item_idx: [2, 0, 0, 1, 1, 2],
            Columns.timestamp: pd.to_datetime(
                ["2024-01-04", "2024-01-02", "2024-01-01", "2024-01-02", "2024-01-03", "2024-01-01"]
            ),
        }
    )
    items, users = user_sequences(events)
    assert items.tolist() == [0, 1, 2, 2, 0] and users.tolist() == [0, 0, 0, 1, 1]
    source, target = transition_matrices(items, users, 3, 2, 1.0, 1)
    # positions with a successor: (u0: a), (u0: b), (u1: c)
    np.testing.assert_allclose(source.toarray(), [[1, 0, 0], [0.5, 1, 0], [0, 0, 1]])
    np.testing.assert_allclose(target.toarray(), [[0, 1, 0], [0, 0, 1], [1, 0, 0]])
    _, wide = transition_matrices(items, users, 3, 1, 1.0, 5)  # targets stop at the user's end
    np.testing.assert_allclose(wide.toarray(), [[0, 1, 1], [0, 0, 1], [1, 0, 0]])


def test_closed_form_solves_each_column_with_a_zero_diagonal() -> None:
    # Independent check: column j of B is the ridge solution over the other items.
    rng = np.random.default_rng(3)
    sequences = [list(rng.choice(9, size=rng.integers(2, 7), replace=False)) for _ in range(25)]
    dataset = sequence_dataset(sequences, 9)
    alpha, lam = 0.4, 3.0
    model = SLISTModel(regularization=lam, alpha=alpha, source_window=3, target_window=2)
    b = model.fit(dataset).weights
    assert b is not None
    items, users = user_sequences(dataset.events)
    s, t = (m.toarray() for m in transition_matrices(items, users, 9, 3, 2.0, 2))
    x = (dataset.user_items.toarray() > 0).astype(float)
    a = alpha * x.T @ x + (1 - alpha) * s.T @ s + lam * np.eye(9)
    c = alpha * x.T @ x + (1 - alpha) * s.T @ t
    for j in range(9):
        rest = np.delete(np.arange(9), j)
        column = np.linalg.solve(a[np.ix_(rest, rest)], c[rest, j])
        np.testing.assert_allclose(b[rest, j], column, atol=1e-5)
        assert b[j, j] == 0.0


def test_sparse_and_dense_products_agree(
    random_dataset: Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(slist, "SPARSE_PRODUCT_DENSITY", 1.0)  # always the sparse product
    sparse = SLISTModel(regularization=30.0).fit(random_dataset).weights
    monkeypatch.setattr(slist, "SPARSE_PRODUCT_DENSITY", 0.0)  # always the dense GEMM
    dense = SLISTModel(regularization=30.0).fit(random_dataset).weights
    assert sparse is not None and dense is not None
    np.testing.assert_allclose(sparse, dense, atol=1e-5)


def test_alpha_one_is_ease(random_dataset: Dataset) -> None:
    ease = EASEModel(regularization=30.0).fit(random_dataset)
    slist = SLISTModel(regularization=30.0, alpha=1.0, recency_half_life=None)
    slist.fit(random_dataset)
    assert slist.weights is not None and ease.weights is not None
    np.testing.assert_allclose(slist.weights, ease.weights, atol=1e-6)


def test_explanations_cite_only_the_users_history(random_dataset: Dataset) -> None:
    model = SLISTModel(regularization=30.0).fit(random_dataset)
    ids, _ = model.recommend(np.array([4]), k=3)
    history = set(random_dataset.user_items[4].indices.tolist())
    for cited in model.explain(4, ids[0], n=3):
        assert cited and {item for item, _ in cited} <= history


@pytest.mark.parametrize(
    ("param", "value"),
    [("alpha", 1.5), ("regularization", 0.0), ("source_window", 0), ("target_window", 0)],
)
def test_out_of_range_parameter_is_named(random_dataset: Dataset, param: str, value: float) -> None:
    with pytest.raises(ConfigError, match=rf"model\.{param}="):
        SLISTModel(**{param: value}).fit(random_dataset)  # type: ignore[arg-type]


def test_needs_the_training_events(random_dataset: Dataset) -> None:
    random_dataset.events = None
    with pytest.raises(ConfigError, match=r"train_events\.parquet"):
        SLISTModel(recency_half_life=None).fit(random_dataset)


def test_oversize_catalogue_is_refused(random_dataset: Dataset) -> None:
    with pytest.raises(ModelCapacityError, match=r"model\.max_items=5"):
        SLISTModel(max_items=5).fit(random_dataset)


def test_search_space_parses_and_names_model_keys() -> None:
    from recops.config import compose
    from recops.tuning.space import parse_space

    cfg = compose(["model=slist"])
    keys = {spec.key for spec in parse_space(cfg.sweep.space)}
    assert keys and all(key.removeprefix("model.") in cfg.model for key in keys)
