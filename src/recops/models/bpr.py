"""implicit's Bayesian Personalized Ranking (Rendle et al., 2009) behind the contract."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from implicit.cpu.bpr import BayesianPersonalizedRanking

from recops.models.factors import ImplicitFactorModel


class BPRModel(ImplicitFactorModel):
    """Matrix factorisation trained by SGD on (user, liked item, other item) triples.

    implicit appends a bias column: `item_factors` is items x (factors + 1) with the item bias
    last, and every user's last column is a constant 1. The plain dot product of the stored
    factors is therefore user·item + item bias, which is exactly implicit's own score.

    Initialisation: implicit draws factors uniformly in ±0.5/factors (std ~0.0045 at 64
    factors), so SGD starts next to the all-zero saddle where at first only the item biases
    move; on small data 100 epochs never leave that popularity-like solution. `init_std`
    draws N(0, init_std) factors instead: 0.02 learns the taste groups of the checkerboard
    contract test on every seed tried and scores MovieLens-small like implicit's own init
    (within seed noise); larger values (0.1) lose ~0.01 NDCG@10 there. `init_std=None`
    keeps implicit's initialisation.

    Reproducibility: implicit's SGD is lock-free ("hogwild"), so with more than one thread
    concurrent updates race and two fits with the same seed differ. Only `num_threads=1` is
    deterministic; `conf/model/bpr.yaml` uses it.
    """

    model_type = "bpr"

    def __init__(
        self,
        factors: int = 64,
        learning_rate: float = 0.01,
        regularization: float = 0.01,
        iterations: int = 100,
        num_threads: int = 1,
        random_state: int | None = 42,
        init_std: float | None = 0.02,
        show_progress: bool = True,
    ) -> None:
        super().__init__()
        self.factors = int(factors)
        self.learning_rate = float(learning_rate)
        self.regularization = float(regularization)
        self.iterations = int(iterations)
        self.num_threads = int(num_threads)
        self.random_state = random_state
        self.init_std = None if init_std is None else float(init_std)
        self.show_progress = bool(show_progress)
        self._estimator: BayesianPersonalizedRanking | None = None

    def build_estimator(self, user_items: sp.csr_matrix) -> BayesianPersonalizedRanking:
        """The bare implicit estimator with this model's hyperparameters.

        Its `random_state` is one `Generator` for the estimator's lifetime. With an int seed,
        implicit would re-create the same generator on every `fit` call, so each
        `fit_partial` would replay the very same sampled triples; a shared generator makes
        successive calls draw fresh samples while a fresh fit stays reproducible.
        """
        rng = np.random.default_rng(self.random_state)
        estimator = BayesianPersonalizedRanking(
            factors=self.factors,
            learning_rate=self.learning_rate,
            regularization=self.regularization,
            iterations=self.iterations,
            num_threads=self.num_threads,
            random_state=rng,
        )
        if self.init_std is not None:
            estimator.user_factors, estimator.item_factors = initial_factors(
                user_items, self.factors, self.init_std, rng
            )
        return estimator


def initial_factors(
    user_items: sp.csr_matrix, factors: int, std: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """N(0, std) user and item factors in implicit's layout: one extra last column that is 1
    for users and the (initially 0) bias for items; users and items without any interaction
    start at zero, as implicit does."""
    n_users, n_items = user_items.shape
    users = rng.normal(0.0, std, (n_users, factors + 1)).astype(np.float32)
    items = rng.normal(0.0, std, (n_items, factors + 1)).astype(np.float32)
    users[np.diff(user_items.indptr) == 0] = 0.0
    items[np.bincount(user_items.indices, minlength=n_items) == 0] = 0.0
    users[:, factors] = 1.0
    items[:, factors] = 0.0
    return users, items
