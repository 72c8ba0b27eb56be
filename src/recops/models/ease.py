"""EASE: Embarrassingly Shallow Autoencoder (Steck, 2019), a closed-form item-item model.

    G = XᵀX + λI,   P = G⁻¹,   B = -P / diag(P) (column-wise),   diag(B) = 0,   scores = X_u B

It needs a dense items x items matrix (and its inverse), so it refuses catalogues above
`max_items` before allocating anything.
"""

from __future__ import annotations

import logging

import numpy as np
import scipy.linalg
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from recops.errors import ModelCapacityError
from recops.features.dataset import Dataset
from recops.models.base import RecModel
from recops.models.profiles import ItemWeightsScoring

log = logging.getLogger(__name__)

#: Dense float64 n x n matrices alive at the peak of the fit (Gram/inverse, B, slack).
_PEAK_MATRICES = 3


def ease_memory_gib(n_items: int) -> float:
    """Rough peak memory of an EASE fit in GiB (a few dense float64 items x items matrices)."""
    return n_items**2 * 8 * _PEAK_MATRICES / 2**30


def ease_weights(x: sp.csr_matrix, regularization: float) -> np.ndarray:
    """The closed-form EASE item-item weights B (float64, zero diagonal)."""
    # Fortran order lets LAPACK invert in place (G is symmetric, so the layout is free).
    gram = (x.T @ x).toarray(order="F").astype(np.float64, copy=False)
    gram[np.diag_indices_from(gram)] += regularization
    p = scipy.linalg.inv(gram, overwrite_a=True, check_finite=False)
    p /= -np.diag(p)  # divides column j by P_jj
    p[np.diag_indices_from(p)] = 0.0
    return p


class EASEModel(ItemWeightsScoring, RecModel):
    """Linear item-item autoencoder with an L2 penalty and a zero-diagonal constraint.

    `recency_half_life` (interactions; None = off) scores with recency-weighted user rows
    (`recops.models.profiles`); B is learned from the plain matrix either way.
    """

    model_type = "ease"
    supports_explain = True
    weights_file = "ease_weights.npy"

    def __init__(
        self,
        regularization: float = 500.0,
        max_items: int = 30000,
        binarize: bool = True,
        num_threads: int = 0,
        recency_half_life: float | None = None,
    ) -> None:
        super().__init__()
        self.regularization = float(regularization)
        self.max_items = int(max_items)
        self.binarize = bool(binarize)
        self.num_threads = int(num_threads)
        self.recency_half_life = None if recency_half_life is None else float(recency_half_life)
        self.weights: np.ndarray | None = None

    def _fit(self, dataset: Dataset) -> None:
        self.weights = None
        self._check_capacity(dataset.n_items)
        self._fit_recency(dataset)
        # BLAS does the heavy lifting here (Gram matrix product, inverse); 0 = library default.
        with threadpool_limits(self.num_threads or None, "blas"):
            b = ease_weights(self._input(dataset.user_items), self.regularization)
        self.weights = b.astype(np.float32)

    def _check_capacity(self, n_items: int) -> None:
        if n_items > self.max_items:
            raise ModelCapacityError(
                f"EASE needs dense {n_items} x {n_items} item matrices: {n_items} items exceed "
                f"the limit model.max_items={self.max_items} (estimated peak memory "
                f"{ease_memory_gib(n_items):.1f} GiB). If this machine has that much memory, "
                f"raise it, e.g. `model.max_items={n_items}`; otherwise use itemknn or als."
            )
        if n_items > self.max_items / 2:
            log.warning(
                "EASE on %d items (limit model.max_items=%d) needs about %.1f GiB of memory",
                n_items,
                self.max_items,
                ease_memory_gib(n_items),
            )

    def _input(self, user_items: sp.csr_matrix) -> sp.csr_matrix:
        """X as the model sees it: binary interactions, or the summed event weights."""
        x = sp.csr_matrix(user_items, dtype=np.float64, copy=True)
        if self.binarize:
            x.eliminate_zeros()
            x.data[:] = 1.0
        return x

    def _profile(self, user_idx: np.ndarray) -> sp.csr_matrix:
        """The users' rows of X, recency-weighted if configured (what B multiplies)."""
        rows = self._input(self._fitted_seen()[user_idx]).astype(np.float32)
        return self._decayed(rows, user_idx)
