"""implicit's Alternating Least Squares (Hu, Koren & Volinsky, 2008) behind the contract."""

from __future__ import annotations

import scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares

from recops.models.factors import FoldInFactorModel, ImplicitFactorModel


class ALSModel(ImplicitFactorModel, FoldInFactorModel):
    """Weighted matrix factorisation for implicit feedback (confidence = 1 + alpha * weight)."""

    model_type = "als"

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

    def fold_in_solver(self, user_items: sp.csr_matrix) -> AlternatingLeastSquares:
        return self.build_estimator()
