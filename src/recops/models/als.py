"""implicit's Alternating Least Squares (Hu, Koren & Volinsky, 2008) behind the contract."""

from __future__ import annotations

import numpy as np
from implicit.cpu.als import AlternatingLeastSquares
from threadpoolctl import threadpool_limits

from recops.features.dataset import Dataset
from recops.models.factors import FactorModel


class ALSModel(FactorModel):
    """Weighted matrix factorisation for implicit feedback (confidence = 1 + alpha * weight)."""

    model_type = "als"
    epochs_param = "iterations"

    def __init__(
        self,
        factors: int = 64,
        iterations: int = 15,
        regularization: float = 0.05,
        alpha: float = 2.0,
        num_threads: int = 0,
        random_state: int | None = 42,
        show_progress: bool = True,
    ) -> None:
        super().__init__()
        self.factors = int(factors)
        self.iterations = int(iterations)
        self.regularization = float(regularization)
        self.alpha = float(alpha)
        self.num_threads = int(num_threads)
        self.random_state = random_state
        self.show_progress = bool(show_progress)
        self._estimator: AlternatingLeastSquares | None = None

    def build_estimator(self) -> AlternatingLeastSquares:
        """The bare implicit estimator with this model's hyperparameters."""
        return AlternatingLeastSquares(
            factors=self.factors,
            iterations=self.iterations,
            regularization=self.regularization,
            alpha=self.alpha,
            num_threads=self.num_threads,
            random_state=self.random_state,
        )

    def _fit(self, dataset: Dataset) -> None:
        self._estimator = None
        self._fit_epochs(dataset, self.iterations)

    def _fit_epochs(self, dataset: Dataset, epochs: int) -> None:
        # implicit parallelises over users itself; a BLAS thread pool underneath thrashes.
        with threadpool_limits(1, "blas"):
            if self._estimator is None:
                self._estimator = self.build_estimator()
            self._estimator.iterations = epochs  # implicit continues from existing factors
            self._estimator.fit(dataset.user_items, show_progress=self.show_progress)
        self.user_factors = np.ascontiguousarray(self._estimator.user_factors, dtype=np.float32)
        self.item_factors = np.ascontiguousarray(self._estimator.item_factors, dtype=np.float32)

    def fold_in(self, dataset: Dataset, item_factors: np.ndarray, known: np.ndarray) -> ALSModel:
        """Fold `dataset`'s users into fixed item factors, without a full retrain.

        `item_factors` has one row per item of `dataset` (any values where `known` is False).
        User factors are solved against the known items (implicit's `partial_fit_users`, i.e.
        `recalculate_user` for every user), items without factors get theirs solved from those
        users (`partial_fit_items`), then users are solved once more with every item. Known
        item factors are never changed, so existing users' scores stay comparable.
        """
        user_items = dataset.user_items.tocsr().astype(np.float32)
        self._seen = user_items
        estimator = self.build_estimator()
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
        self._estimator = estimator
        self.user_factors = np.ascontiguousarray(estimator.user_factors, dtype=np.float32)
        self.item_factors = np.ascontiguousarray(estimator.item_factors, dtype=np.float32)
        return self
