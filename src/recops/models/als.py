"""implicit's Alternating Least Squares (Hu, Koren & Volinsky, 2008) behind the contract."""

from __future__ import annotations

from statistics import NormalDist
from typing import Any

import numpy as np
import scipy.linalg
import scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares

from recops.models.explain import top_contributions
from recops.models.factors import FoldInFactorModel, ImplicitFactorModel


class ALSModel(ImplicitFactorModel, FoldInFactorModel):
    """Weighted matrix factorisation for implicit feedback (confidence = 1 + alpha * weight)."""

    model_type = "als"
    supports_uncertainty = True

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
        # built on first use, for the current item factors: (factors, Y'Y + reg I, noise var)
        self._posterior: tuple[np.ndarray, np.ndarray, float] | None = None

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

    # -- capabilities: explanations and score intervals ---------------------------------------
    def explain(self, user: int, item_idx: np.ndarray, n: int) -> list[list[tuple[int, float]]]:
        """implicit's `explain` (Hu et al. 2008, section 5), vectorised: the score of item i
        is a sum over the user's history items j of `c_uj * y_i' A_u^-1 y_j`; the largest
        terms are cited (implicit loops in Python per item and history item; the values are
        the same, see tests/unit/models/test_als_capabilities.py)."""
        factor, history, confidence = self._user_system(user)
        _, items = self._factors()
        target = items[np.asarray(item_idx, dtype=np.int64)].astype(np.float64)
        weighted = scipy.linalg.cho_solve(factor, target.T)  # A_u^-1 y_i, one column per item
        terms = (items[history].astype(np.float64) @ weighted).T * confidence[None, :]
        return top_contributions(history, terms, n)

    def score_intervals(
        self, user: int, item_idx: np.ndarray, level: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """A predictive interval of the user's preference for each item.

        The user's factors are a ridge regression (implicit's objective): with Gaussian noise
        of variance s2 / c_ui on each preference p_ui and the prior x_u ~ N(0, s2 / reg I),
        the posterior covariance of x_u is `s2 * A_u^-1`, A_u = Y'C_uY + reg I, and an item's
        preference has variance `y_i' Sigma_u y_i + s2`. Fewer interactions -> smaller A_u ->
        wider intervals. s2 is the weighted mean squared training residual over all pairs.

        What it does not cover: s2 is dominated by the untouched zeros, which the model fits
        closely, so the interval is narrow (MovieLens small: s2 0.0078, 90% width ~0.29)
        and almost never contains p = 1 for an item the user goes on to interact with
        (0.3% of held-out interactions inside the 95% interval); the posterior term is a
        few percent of the variance (every item enters each user's solve), so widths vary
        little with history; model error and the item factors' uncertainty are left out.
        See reports/benchmarks/uncertainty_calibration.md.
        """
        idx = np.asarray(item_idx, dtype=np.int64)
        scores = self.score_items(user, idx).astype(np.float64)
        std = self.score_std(user, idx)
        z = NormalDist().inv_cdf(0.5 + float(level) / 2)
        return (scores - z * std).astype(np.float32), (scores + z * std).astype(np.float32)

    def score_std(self, user: int, item_idx: np.ndarray) -> np.ndarray:
        """Predictive standard deviation of the user's preference for each item."""
        _, items = self._factors()
        _, noise = self._posterior_parts()
        factor, _, _ = self._user_system(user)
        target = items[np.asarray(item_idx, dtype=np.int64)].astype(np.float64)
        solved = scipy.linalg.cho_solve(factor, target.T)
        epistemic = noise * np.einsum("if,fi->i", target, solved)
        return np.sqrt(np.maximum(epistemic, 0.0) + noise)

    def _user_system(self, user: int) -> tuple[Any, np.ndarray, np.ndarray]:
        """Cholesky factor of A_u = Y'Y + reg I + sum_j (c_uj - 1) y_j y_j' (c = alpha * r, as
        implicit weighs), the user's history items and their confidences."""
        _, items = self._factors()
        gram, _ = self._posterior_parts()
        seen = self._fitted_seen()
        lo, hi = seen.indptr[user], seen.indptr[user + 1]
        history = seen.indices[lo:hi].astype(np.int64)
        confidence = self.alpha * seen.data[lo:hi].astype(np.float64)
        vectors = items[history].astype(np.float64)
        a = gram + (vectors * (confidence - 1.0)[:, None]).T @ vectors
        return scipy.linalg.cho_factor(a), history, confidence

    def _posterior_parts(self) -> tuple[np.ndarray, float]:
        """Y'Y + reg I and the noise variance, computed once per set of factors."""
        users, items = self._factors()
        if self._posterior is None or self._posterior[0] is not items:
            y = items.astype(np.float64)
            gram = y.T @ y + self.regularization * np.eye(y.shape[1])
            self._posterior = (items, gram, self._noise_variance(users, y))
        return self._posterior[1], self._posterior[2]

    def _noise_variance(self, users: np.ndarray, items: np.ndarray) -> float:
        """sum c_ui (p_ui - x_u.y_i)^2 / (n_users * n_items), without the dense matrix:
        over all pairs sum s^2 = x'Y'Yx; observed pairs add (1 - 2s) + (c - 1)(1 - s)^2."""
        seen = self._fitted_seen().tocoo()
        x = users.astype(np.float64)
        squares = float(np.einsum("uf,fg,ug->", x, items.T @ items, x))
        observed = 0.0
        step = 1_000_000
        for start in range(0, seen.nnz, step):
            rows = seen.row[start : start + step]
            cols = seen.col[start : start + step]
            s = np.einsum("nf,nf->n", x[rows], items[cols])
            c = self.alpha * seen.data[start : start + step].astype(np.float64)
            observed += float(np.sum((1 - 2 * s) + (c - 1) * (1 - s) ** 2))
        return max((squares + observed) / (seen.shape[0] * seen.shape[1]), 1e-12)
