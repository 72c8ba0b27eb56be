"""The popularity baseline: items ranked by how many distinct training users touched them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from recops.features.dataset import Dataset
from recops.models.base import RecModel

_STATE = "popularity.npy"


class PopularityModel(RecModel):
    """Same ranking for everyone (minus what they have seen). Every report shows it."""

    model_type = "popularity"
    personalized = False
    erasure = "redact"  # the counts are recomputed from the remaining users: exact

    def __init__(self) -> None:
        super().__init__()
        self.popularity: np.ndarray | None = None

    def _fit(self, dataset: Dataset) -> None:
        self.popularity = dataset.item_popularity().astype(np.float32)

    def _scores(self) -> np.ndarray:
        if self.popularity is None:
            raise RuntimeError("PopularityModel is not fitted: call fit() or load() first")
        return self.popularity

    def _score_users(self, user_idx: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self._scores(), (len(user_idx), len(self._scores())))

    def _score_similar(self, item_idx: np.ndarray) -> np.ndarray:
        """No notion of similarity: the most popular other items."""
        return self._score_users(item_idx)

    def _drop_users(self, keep: np.ndarray) -> None:
        seen = self._fitted_seen()
        counts = np.bincount(seen.indices[seen.data > 0], minlength=seen.shape[1])
        self.popularity = counts.astype(np.float32)

    def _save_state(self, folder: Path) -> None:
        np.save(folder / _STATE, self._scores())

    def _load_state(self, folder: Path) -> None:
        self.popularity = np.load(folder / _STATE)
