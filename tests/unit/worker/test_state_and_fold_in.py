from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recops.features.dataset import Dataset
from recops.models.als import ALSModel
from recops.worker.state import WorkerState


def test_state_round_trip_and_history(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    state = WorkerState(dataset="ds", trained_through_batch=3, checked_through_batch=4)
    for n in range(25):
        state.finish({"cycle": n, "outcome": "no_new_data"})
    state.save(path)
    loaded = WorkerState.load(path)
    assert loaded.trained_through_batch == 3 and loaded.checked_through_batch == 4
    assert loaded.last_cycle == {"cycle": 24, "outcome": "no_new_data"}
    assert len(loaded.history) == 20 and loaded.history[0]["cycle"] == 24
    assert WorkerState.load(tmp_path / "missing.json").trained_through_batch is None


def test_fold_in_keeps_known_item_factors_and_learns_new_ones(
    random_dataset: Dataset,
) -> None:
    params = {"factors": 8, "iterations": 10, "show_progress": False, "num_threads": 1}
    full = ALSModel(**params).fit(random_dataset)
    assert full.item_factors is not None and full.user_factors is not None
    known = np.ones(random_dataset.n_items, dtype=bool)
    known[-5:] = False  # as if these items were new since the base model
    folded = ALSModel(**params).fold_in(random_dataset, full.item_factors, known)
    assert folded.item_factors is not None and folded.user_factors is not None
    np.testing.assert_array_equal(folded.item_factors[known], full.item_factors[known])
    assert np.abs(folded.item_factors[~known]).sum() > 0
    scores_full = full.user_factors @ full.item_factors.T
    scores_folded = folded.user_factors @ folded.item_factors.T
    assert np.corrcoef(scores_full.ravel(), scores_folded.ravel())[0, 1] > 0.9
    ids, _ = folded.recommend(np.arange(3), 5)
    assert ids.shape == (3, 5) and (ids >= 0).all()


def test_fold_in_result_survives_save_and_load(random_dataset: Dataset, tmp_path: Path) -> None:
    model = ALSModel(factors=4, show_progress=False)
    factors = np.random.default_rng(0).normal(size=(random_dataset.n_items, 4))
    model.fold_in(random_dataset, factors, np.ones(random_dataset.n_items, dtype=bool))
    model.save(tmp_path / "m")
    loaded = ALSModel.load(tmp_path / "m")
    assert isinstance(loaded, ALSModel) and loaded.user_factors is not None
    assert loaded.user_factors == pytest.approx(model.user_factors)
