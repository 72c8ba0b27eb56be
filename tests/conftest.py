"""Shared fixtures: tiny known-answer datasets and an isolated MLflow store."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from recops.columns import Columns
from recops.features.dataset import Dataset
from recops.features.idmap import IdMap

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_ML_SMALL = PROJECT_ROOT.parent / "shared" / "datasets" / "ml-latest-small"
#: Parallel test processes for `-n auto` (pyproject addopts). Most of the suite's time is spent
#: waiting on servers and subprocesses, so one more process than the 2 cores CI has pays off;
#: RECOPS_TEST_WORKERS overrides it (0: no parallel workers).
DEFAULT_WORKERS = 3


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """How many pytest-xdist workers `-n auto` starts: none for benchmarks (they time
    themselves and must not run beside each other), else RECOPS_TEST_WORKERS or the default."""
    marks = str(config.getoption("markexpr") or "")
    asked_for_benchmarks = "benchmark" in marks and "not benchmark" not in marks
    if asked_for_benchmarks or any("benchmarks" in str(arg) for arg in config.args):
        return 0
    return int(os.environ.get("RECOPS_TEST_WORKERS", DEFAULT_WORKERS))


def dataset_from_matrix(matrix: sp.csr_matrix, categories: list[str] | None = None) -> Dataset:
    """A `Dataset` with ids u0.. / i0.. over `matrix` (users x items)."""
    n_users, n_items = matrix.shape
    items = [f"i{j}" for j in range(n_items)]
    meta = pd.DataFrame(
        {
            Columns.item: items,
            Columns.title: [f"item {j}" for j in range(n_items)],
            Columns.category: categories or ["c"] * n_items,
            Columns.brand: None,
            Columns.price: np.nan,
            Columns.tags: None,
        }
    )
    coo = matrix.tocoo()
    events = pd.DataFrame(
        {
            Columns.user_idx: coo.row.astype(np.int32),
            Columns.item_idx: coo.col.astype(np.int32),
            Columns.timestamp: pd.Timestamp("2024-01-01")
            + pd.to_timedelta(np.arange(coo.nnz), "min"),
            Columns.weight: coo.data.astype(np.float32),
        }
    )
    return Dataset(
        users=IdMap(np.array([f"u{i}" for i in range(n_users)], dtype=object), kind="user"),
        items=IdMap(np.array(items, dtype=object), kind="item"),
        user_items=matrix.tocsr().astype(np.float32),
        item_meta=meta,
        events=events,
    )


@pytest.fixture
def checkerboard() -> tuple[Dataset, np.ndarray]:
    """implicit's checkerboard idea: two taste groups of users and items.

    Users 0..9 like items 0..5, users 10..19 like items 6..11, each user with one item of its
    own group withheld. A personalised model must put that withheld item first.
    Returns the dataset and the withheld item per user.
    """
    n_users, n_items, half = 20, 12, 6
    dense = np.zeros((n_users, n_items), dtype=np.float32)
    withheld = np.empty(n_users, dtype=np.int64)
    for u in range(n_users):
        group = 0 if u < n_users // 2 else 1
        liked = np.arange(group * half, (group + 1) * half)
        withheld[u] = liked[u % half]
        dense[u, liked] = 1.0
        dense[u, withheld[u]] = 0.0
    categories = ["a"] * half + ["b"] * half
    return dataset_from_matrix(sp.csr_matrix(dense), categories), withheld


@pytest.fixture
def random_dataset() -> Dataset:
    """A sparse random world (60 users x 40 items) with a popularity skew."""
    rng = np.random.default_rng(0)
    pop = 1.0 / np.arange(1, 41)
    dense = (rng.random((60, 40)) < 0.6 * pop / pop.max() + 0.05).astype(np.float32)
    return dataset_from_matrix(sp.csr_matrix(dense))


@pytest.fixture
def mlflow_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A real, empty MLflow SQLite store for one test."""
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    monkeypatch.setenv("RECOPS_ROOT", str(PROJECT_ROOT))
    mlflow.set_tracking_uri(uri)
    yield uri
    mlflow.set_tracking_uri(None)
