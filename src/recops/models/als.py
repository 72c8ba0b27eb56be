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
