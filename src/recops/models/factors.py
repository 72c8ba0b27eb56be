"""Shared scoring for models that end in user and item embedding matrices."""

from __future__ import annotations

from abc import abstractmethod
from pathlib import Path
from typing import Self

import numpy as np
import scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares
from implicit.cpu.matrix_factorization_base import MatrixFactorizationBase
from threadpoolctl import threadpool_limits

from recops.features.dataset import Dataset
from recops.models.base import RecModel
from recops.models.explain import top_contributions, unit

_FACTORS = "factors.npz"


class FactorModel(RecModel):
    """Scores are dot products of user and item factors; similarity is cosine."""

    erasure = "redact"

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

    # -- capabilities ----------------------------------------------------------------------
    supports_explain = True

    def factor_vectors(self) -> tuple[np.ndarray, np.ndarray] | None:
        return self._factors()

    def score_items(self, user: int, item_idx: np.ndarray) -> np.ndarray:
        users, items = self._factors()
        return np.asarray(items[np.asarray(item_idx, dtype=np.int64)] @ users[user], np.float32)

    def item_similarity(self, item_idx: np.ndarray) -> np.ndarray:
        _, items = self._factors()
        vectors = unit(items[np.asarray(item_idx, dtype=np.int64)])
        return np.asarray(vectors @ vectors.T, dtype=np.float32)

    def explain(self, user: int, item_idx: np.ndarray, n: int) -> list[list[tuple[int, float]]]:
        """The history items most similar (cosine of item vectors) to each recommended item."""
        _, items = self._factors()
        seen = self._fitted_seen()
        history = seen.indices[seen.indptr[user] : seen.indptr[user + 1]]
        targets = unit(items[np.asarray(item_idx, dtype=np.int64)])
        return top_contributions(history, targets @ unit(items[history]).T, n)

    def _drop_users(self, keep: np.ndarray) -> None:
        self.user_factors = self._factors()[0][keep]

    def _save_state(self, folder: Path) -> None:
        users, items = self._factors()
        np.savez(folder / _FACTORS, user_factors=users, item_factors=items)

    def _load_state(self, folder: Path) -> None:
        with np.load(folder / _FACTORS) as data:
            self.user_factors = data["user_factors"]
            self.item_factors = data["item_factors"]


class FoldInFactorModel(FactorModel):
    """A weighted-ALS factor model (implicit feedback, confidence 1 + alpha * weight): new
    users and items fold into fixed item factors with implicit's least-squares solver,
    whichever engine trained the factors (`als`, `spark_als`)."""

    supports_fold_in = True

    @abstractmethod
    def fold_in_solver(self, user_items: sp.csr_matrix) -> AlternatingLeastSquares:
        """An implicit ALS estimator whose per-user solve matches this model's loss."""

    def fold_in(self, dataset: Dataset, item_factors: np.ndarray, known: np.ndarray) -> Self:
        """Fold `dataset`'s users into fixed item factors, without a full retrain.

        `item_factors` has one row per item of `dataset` (any values where `known` is False).
        User factors are solved against the known items (implicit's `partial_fit_users`, i.e.
        `recalculate_user` for every user), items without factors get theirs solved from those
        users (`partial_fit_items`), then users are solved once more with every item. Known
        item factors are never changed, so existing users' scores stay comparable.
        """
        user_items = dataset.user_items.tocsr().astype(np.float32)
        self._seen = user_items
        estimator = self.fold_in_solver(user_items)
        factors = np.where(known[:, None], item_factors, 0.0).astype(np.float32)
        estimator.item_factors = factors
        estimator.user_factors = np.zeros((dataset.n_users, factors.shape[1]), np.float32)
        users = np.arange(dataset.n_users)
        new_items = np.flatnonzero(~known)
        with threadpool_limits(1, "blas"):
            estimator.partial_fit_users(users, user_items)
            if new_items.size:
                estimator.partial_fit_items(new_items, user_items.T.tocsr()[new_items])
                estimator.partial_fit_users(users, user_items)
        self._keep_factors(estimator)
        return self

    def _keep_factors(self, estimator: MatrixFactorizationBase) -> None:
        self.user_factors = np.ascontiguousarray(estimator.user_factors, dtype=np.float32)
        self.item_factors = np.ascontiguousarray(estimator.item_factors, dtype=np.float32)


class ImplicitFactorModel(FactorModel):
    """A factor model trained by one of implicit's CPU estimators, `iterations` epochs at a
    time (implicit continues from the estimator's current factors)."""

    epochs_param = "iterations"
    iterations: int
    show_progress: bool
    _estimator: MatrixFactorizationBase | None

    @abstractmethod
    def build_estimator(self, user_items: sp.csr_matrix) -> MatrixFactorizationBase:
        """The bare implicit estimator with this model's hyperparameters, for `user_items`."""

    def _fit(self, dataset: Dataset) -> None:
        self._estimator = None
        self._fit_epochs(dataset, self.iterations)

    def _fit_epochs(self, dataset: Dataset, epochs: int) -> None:
        # implicit parallelises over users itself; a BLAS thread pool underneath thrashes.
        with threadpool_limits(1, "blas"):
            if self._estimator is None:
                self._estimator = self.build_estimator(dataset.user_items)
            self._estimator.iterations = epochs
            self._estimator.fit(dataset.user_items, show_progress=self.show_progress)
        self._keep_factors(self._estimator)

    def _keep_factors(self, estimator: MatrixFactorizationBase) -> None:
        self._estimator = estimator
        self.user_factors = np.ascontiguousarray(estimator.user_factors, dtype=np.float32)
        self.item_factors = np.ascontiguousarray(estimator.item_factors, dtype=np.float32)
