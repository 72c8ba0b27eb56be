"""Shared scoring for models that end in user and item embedding matrices."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from recops.models.base import RecModel

_FACTORS = "factors.npz"


class FactorModel(RecModel):
    """Scores are dot products of user and item factors; similarity is cosine."""

    def __init__(self) -> None:
        super().__init__()
        self.user_factors: np.ndarray | None = None
        self.item_factors: np.ndarray | None = None

    def _factors(self) -> tuple[np.ndarray, np.ndarray]:
        if self.user_factors is None or self.item_factors is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted: call fit() or load() first")
        return self.user_factors, self.item_factors

    def _score_users(self, user_idx: np.ndarray) -> np.ndarray:
        users, items = self._factors()
        return users[user_idx] @ items.T

    def _score_similar(self, item_idx: np.ndarray) -> np.ndarray:
        _, items = self._factors()
        norms = np.linalg.norm(items, axis=1)
        norms[norms == 0] = 1.0
        unit = items / norms[:, None]
        return unit[item_idx] @ unit.T

    def _save_state(self, folder: Path) -> None:
        users, items = self._factors()
        np.savez(folder / _FACTORS, user_factors=users, item_factors=items)

    def _load_state(self, folder: Path) -> None:
        with np.load(folder / _FACTORS) as data:
            self.user_factors = data["user_factors"]
            self.item_factors = data["item_factors"]
