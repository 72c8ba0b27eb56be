"""SLIST: a transition-aware linear item-item model (after Choi et al., WWW 2021,
"Session-aware Linear Item-Item Models for Session-based Recommendation"), closed form.

Two least-squares objectives share one item x item matrix B (zero diagonal, as in EASE):

    α ‖X − X B‖²  +  (1 − α) ‖T − S B‖²  +  λ ‖B‖²,   diag(B) = 0

* X (users x items, binary) is the EASE reconstruction: what a user's items imply overall.
* S, T (one row per position t of each user's time-ordered history) are the transitions:
  S holds the items up to t, the k-th most recent weighted 0.5 ** (k / source_half_life)
  (at most `source_window` of them), T the next `target_window` items. B learns which items
  follow the recent ones - what a per-user temporal holdout asks for.

With P = (α XᵀX + (1 − α) SᵀS + λ I)⁻¹ the solution is

    B₀ = I − λ P + (1 − α) P Sᵀ(T − S),    B = B₀ − P diagMat(diag(B₀) / diag(P))

(the second step is the Lagrange multiplier of the zero diagonal; α = 1 is exactly EASE).
Scores are a user's recency-weighted profile times B (`recops.models.profiles`), so the last
items count most - the inference side of the original's position weights.

Time order comes from `Dataset.events` (user_idx, item_idx, timestamp), the same training
events EASE's `recency_half_life` reads; repeated consecutive events of one item collapse to
one position. Like EASE it needs dense items x items matrices and refuses catalogues above
`max_items`.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import scipy.linalg
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from recops.columns import Columns
from recops.errors import ConfigError, ModelCapacityError
from recops.features.dataset import Dataset
from recops.features.timestamps import epoch_ns
from recops.models.base import RecModel
from recops.models.ease import ease_memory_gib
from recops.models.profiles import ItemWeightsScoring

log = logging.getLogger(__name__)


def user_sequences(events: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Items of every user's history in time order, concatenated, and the user of each.

    Ties in time keep the events' stored order; an item repeated in consecutive events of a
    user is one position (a view then a purchase is one step, not a transition)."""
    users = events[Columns.user_idx].to_numpy(dtype=np.int64)
    items = events[Columns.item_idx].to_numpy(dtype=np.int64)
    order = np.lexsort((epoch_ns(events[Columns.timestamp]), users))
    users, items = users[order], items[order]
    repeat = np.r_[False, (users[1:] == users[:-1]) & (items[1:] == items[:-1])]
    return items[~repeat], users[~repeat]


def transition_matrices(
    items: np.ndarray,
    users: np.ndarray,
    n_items: int,
    source_window: int,
    source_half_life: float,
    target_window: int,
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """S and T (positions x items) of `user_sequences`: one row per position with a successor.

    Row t of S: the item at t and up to `source_window - 1` earlier ones of the same user, the
    k-th before t weighted 0.5 ** (k / source_half_life); row t of T: the user's next
    `target_window` items, weight 1."""
    n = len(items)
    position = np.arange(n)
    first = np.r_[0, np.flatnonzero(users[1:] != users[:-1]) + 1]
    lengths = np.diff(np.r_[first, n])
    start = np.repeat(first, lengths)
    end = start + np.repeat(lengths, lengths)  # exclusive
    rows_at = position[position + 1 < end]  # positions with at least one successor
    row_id = np.cumsum(position + 1 < end) - 1
    shape = (len(rows_at), n_items)

    def gather(offsets: range, weight: np.ndarray) -> sp.csr_matrix:
        rows, cols, vals = [], [], []
        for offset, w in zip(offsets, weight, strict=True):
            at = rows_at + offset
            ok = (at >= start[rows_at]) & (at < end[rows_at])
            rows.append(row_id[rows_at[ok]])
            cols.append(items[at[ok]])
            vals.append(np.full(int(ok.sum()), w))
        data = (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols)))
        return sp.csr_matrix(data, shape=shape, dtype=np.float64)  # duplicates are summed

    lags = np.arange(source_window)
    source = gather(range(0, -source_window, -1), np.power(0.5, lags / source_half_life))
    target = gather(range(1, target_window + 1), np.ones(target_window))
    return source, target


def slist_weights(
    x: sp.csr_matrix,
    source: sp.csr_matrix,
    target: sp.csr_matrix,
    alpha: float,
    regularization: float,
) -> np.ndarray:
    """The closed-form B (float64, zero diagonal) of the combined objective (module docstring)."""
    a = (alpha * (x.T @ x) + (1.0 - alpha) * (source.T @ source)).toarray(order="F")
    a[np.diag_indices_from(a)] += regularization
    p = scipy.linalg.inv(a, overwrite_a=True, check_finite=False)
    del a
    if alpha < 1.0:
        b = times_transitions(p, sp.csr_matrix(source.T @ (target - source)))
        b *= 1.0 - alpha
    else:
        b = np.zeros_like(p)
    b -= regularization * p
    b[np.diag_indices_from(b)] += 1.0
    b -= p * (np.diag(b) / np.diag(p))[None, :]  # column j minus P[:, j] * mu_j
    b[np.diag_indices_from(b)] = 0.0
    return b


#: Below this density of Sᵀ(T − S), P times it is cheaper as a sparse product (cost ~ nnz·n)
#: than as a dense float32 GEMM (~ n³ at BLAS speed); measured on MovieLens small (9.7k items):
#: 1.1M non-zeros took 23 s sparse against 75 s dense on one core.
SPARSE_PRODUCT_DENSITY = 0.04


def times_transitions(p: np.ndarray, transitions: sp.csr_matrix) -> np.ndarray:
    """P @ transitions (float64), the cheaper way for the transitions' density."""
    n = p.shape[0]
    if transitions.nnz <= SPARSE_PRODUCT_DENSITY * n * n:
        return np.asarray((sp.csr_matrix(transitions.T) @ p).T)  # P is symmetric
    # Dense: float32 halves the time (B is stored as float32 anyway).
    dense = transitions.astype(np.float32).toarray()
    return np.asarray(p.astype(np.float32) @ dense, dtype=np.float64)


class SLISTModel(ItemWeightsScoring, RecModel):
    """EASE plus an item-transition objective from each user's time-ordered history.

    `alpha` weighs the two (1 = EASE); `recency_half_life` (interactions; None = off) weights
    the scoring profile as in EASE. See the module docstring for the closed form.
    """

    model_type = "slist"
    supports_explain = True
    weights_file = "slist_weights.npy"

    def __init__(
        self,
        regularization: float = 200.0,
        alpha: float = 0.5,
        source_window: int = 10,
        source_half_life: float = 2.0,
        target_window: int = 3,
        recency_half_life: float | None = 5.0,
        max_items: int = 30000,
        num_threads: int = 0,
    ) -> None:
        super().__init__()
        self.regularization = float(regularization)
        self.alpha = float(alpha)
        self.source_window = int(source_window)
        self.source_half_life = float(source_half_life)
        self.target_window = int(target_window)
        self.recency_half_life = None if recency_half_life is None else float(recency_half_life)
        self.max_items = int(max_items)
        self.num_threads = int(num_threads)
        self.weights: np.ndarray | None = None

    @property
    def requires_events(self) -> bool:
        return True  # the transitions need the time order

    def _fit(self, dataset: Dataset) -> None:
        self.weights = None
        self._check_params()
        self._check_capacity(dataset.n_items)
        if dataset.events is None:
            raise ConfigError(
                "model slist needs the training events (the features folder's "
                "train_events.parquet) for the time order of each user's history"
            )
        self._fit_recency(dataset)
        items, users = user_sequences(dataset.events)
        source, target = transition_matrices(
            items,
            users,
            dataset.n_items,
            self.source_window,
            self.source_half_life,
            self.target_window,
        )
        x = sp.csr_matrix(dataset.user_items, dtype=np.float64, copy=True)
        x.eliminate_zeros()
        x.data[:] = 1.0
        with threadpool_limits(self.num_threads or None, "blas"):
            b = slist_weights(x, source, target, self.alpha, self.regularization)
        self.weights = np.ascontiguousarray(b, dtype=np.float32)

    def _check_params(self) -> None:
        checks = {
            "alpha": 0.0 <= self.alpha <= 1.0,
            "regularization": self.regularization > 0,
            "source_window": self.source_window >= 1,
            "source_half_life": self.source_half_life > 0,
            "target_window": self.target_window >= 1,
        }
        for name, ok in checks.items():
            if not ok:
                raise ConfigError(
                    f"model.{name}={getattr(self, name)} is out of range (alpha in [0, 1], "
                    "regularization and source_half_life > 0, windows >= 1)"
                )

    def _check_capacity(self, n_items: int) -> None:
        if n_items > self.max_items:
            raise ModelCapacityError(
                f"SLIST needs dense {n_items} x {n_items} item matrices: {n_items} items exceed "
                f"the limit model.max_items={self.max_items} (estimated peak memory "
                f"{ease_memory_gib(n_items):.1f} GiB). If this machine has that much memory, "
                f"raise it, e.g. `model.max_items={n_items}`; otherwise use itemknn or als."
            )

    def _profile(self, user_idx: np.ndarray) -> sp.csr_matrix:
        """The users' binary rows, recency-weighted if configured (what B multiplies)."""
        rows = sp.csr_matrix(self._fitted_seen()[user_idx], dtype=np.float32, copy=True)
        rows.eliminate_zeros()
        rows.data[:] = 1.0
        return self._decayed(rows, user_idx)
