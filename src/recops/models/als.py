"""implicit's Alternating Least Squares (Hu, Koren & Volinsky, 2008) behind the contract."""

from __future__ import annotations

from typing import Self

import numpy as np
import scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares
from threadpoolctl import threadpool_limits

from recops.features.dataset import Dataset
from recops.models.factors import ImplicitFactorModel


class ALSModel(ImplicitFactorModel):
    """Weighted matrix factorisation for implicit feedback (confidence = 1 + alpha * weight)."""

    model_type = "als"
    supports_fold_in = True

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

    def build_estimator(self, user_items: sp.csr_matrix | None = None) -> AlternatingLeastSquares:
        """The bare implicit estimator with this model's hyperparameters (implicit
        initialises ALS factors itself, so `user_items` is not needed)."""
        return AlternatingLeastSquares(
            factors=self.factors,
            iterations=self.iterations,
            regularization=self.regularization,
            alpha=self.alpha,
            num_threads=self.num_threads,
            random_state=self.random_state,
        )

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
        self._keep_factors(estimator)
        return self
