"""Vectorised, chunked offline metrics for top-K recommendation lists.

Inputs shared by every function here:

* ``recos`` - integer array ``(n_users, K_max)`` of item indices in rank order (rank 1 first),
  right-padded with ``-1`` when a user got fewer than ``K_max`` items. A padded slot always counts
  as a miss; an item repeated within one row counts only at its first (best) position.
* ``relevant`` - binary sparse matrix ``(n_users, n_items)`` of held-out test interactions, row
  ``i`` belonging to the same user as ``recos[i]``. Any non-zero value counts as relevant.

Ranking metrics are means over *counted* users: those with at least one relevant item. Users with
no relevant item in ``relevant`` are ignored (they have no defined recall/nDCG), and ``n_users``
in the result says how many users were counted. A ``k`` larger than ``K_max`` is allowed: the
missing slots are misses, so precision@k is still ``hits / k``.

Per chunk of users the boolean hits matrix ``(chunk, max(ks))`` is built without a per-user
Python loop, either by densifying the chunk's rows of ``relevant`` (when ``chunk * n_items`` is
below ``dense_cells_limit``) or by a binary search of the flattened ``row * n_items + item`` keys
of the CSR chunk. Every metric is then computed from the hits matrix with cumsum/broadcasting.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]

RANKING_METRICS: Final = ("precision", "recall", "ndcg", "map", "mrr", "hit_rate")
BEYOND_ACCURACY_METRICS: Final = ("coverage", "novelty", "arp")
DEFAULT_KS: Final = (5, 10, 20)
DEFAULT_CHUNK_SIZE: Final = 2048
# Above this many cells (chunk rows x n_items) the hits lookup uses binary search, not a dense row.
DENSE_CELLS_LIMIT: Final = 50_000_000
N_USERS_KEY: Final = "n_users"


def metric_key(name: str, k: int) -> str:
    """Flat result key of metric ``name`` at cut-off ``k``, e.g. ``metric_key("ndcg", 10)``."""
    return f"{name}_at_{k}"


# --------------------------------------------------------------------------- per-user metrics
# Each takes the hits matrix (users x >=k, True where the item at that rank is relevant), the
# number of relevant items per user (all >= 1) and k; it returns one value per user.


def precision_at_k(hits: BoolArray, n_relevant: IntArray, k: int) -> FloatArray:
    """Precision@k: number of relevant items among the top k divided by k."""
    return hits[:, :k].sum(axis=1) / k


def recall_at_k(hits: BoolArray, n_relevant: IntArray, k: int) -> FloatArray:
    """Recall@k: relevant items among the top k divided by ``min(n_relevant, k)``.

    Capping the denominator at k makes 1.0 reachable for users with more than k relevant
    items. It is the protocol of the team's reference figures (`shared/datasets/README.md`);
    the uncapped variant (divide by n_relevant) is lower whenever users have > k test items.
    """
    return hits[:, :k].sum(axis=1) / np.minimum(n_relevant, k)


def ndcg_at_k(hits: BoolArray, n_relevant: IntArray, k: int) -> FloatArray:
    """nDCG@k with binary gain: ``sum_hits 1/log2(rank+1)`` over the same sum for an ideal list.

    The ideal list puts ``min(n_relevant, k)`` relevant items in the first ranks.
    """
    discounts = 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))
    dcg = hits[:, :k] @ discounts
    ideal_dcg = np.cumsum(discounts)[np.minimum(n_relevant, k) - 1]
    return np.asarray(dcg / ideal_dcg, dtype=np.float64)


def map_at_k(hits: BoolArray, n_relevant: IntArray, k: int) -> FloatArray:
    """Average precision@k: sum of precision@rank over hit ranks, divided by min(n_relevant, k)."""
    top = hits[:, :k]
    precision_at_rank = np.cumsum(top, axis=1) / np.arange(1, k + 1, dtype=np.float64)
    return np.asarray(
        (precision_at_rank * top).sum(axis=1) / np.minimum(n_relevant, k), dtype=np.float64
    )


def mrr_at_k(hits: BoolArray, n_relevant: IntArray, k: int) -> FloatArray:
    """Reciprocal rank@k: 1 / rank of the first relevant item in the top k, 0 if there is none."""
    top = hits[:, :k]
    first_rank = np.argmax(top, axis=1) + 1
    return np.asarray(np.where(top.any(axis=1), 1.0 / first_rank, 0.0), dtype=np.float64)


def hit_rate_at_k(hits: BoolArray, n_relevant: IntArray, k: int) -> FloatArray:
    """Hit rate@k: 1 if at least one relevant item is in the top k, else 0."""
    return np.asarray(hits[:, :k].any(axis=1), dtype=np.float64)


_PER_USER: Final[dict[str, Callable[[BoolArray, IntArray, int], FloatArray]]] = {
    "precision": precision_at_k,
    "recall": recall_at_k,
    "ndcg": ndcg_at_k,
    "map": map_at_k,
    "mrr": mrr_at_k,
    "hit_rate": hit_rate_at_k,
}


# --------------------------------------------------------------------------- ranking metrics


def ranking_metrics(
    recos: npt.ArrayLike,
    relevant: sp.spmatrix | sp.sparray,
    ks: Sequence[int] = DEFAULT_KS,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    *,
    dense_cells_limit: int = DENSE_CELLS_LIMIT,
) -> dict[str, float]:
    """Mean precision, recall, nDCG, MAP, MRR and hit rate at every k, over counted users.

    Returns keys ``metric_key(name, k)`` for each name in ``RANKING_METRICS`` and k in ``ks``,
    plus ``"n_users"``: the number of users with at least one relevant item (the only ones
    counted). With no such user every metric is NaN. ``dense_cells_limit`` picks the dense
    (``chunk * n_items < limit``) or the binary-search hits lookup; both give the same result.
    """
    values, counted = _per_user_metrics(recos, relevant, ks, chunk_size, dense_cells_limit)
    result = {key: _mean(float(v[counted].sum()), counted.size) for key, v in values.items()}
    result[N_USERS_KEY] = float(counted.size)
    return result


def per_user_ranking_metrics(
    recos: npt.ArrayLike,
    relevant: sp.spmatrix | sp.sparray,
    ks: Sequence[int] = DEFAULT_KS,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    *,
    dense_cells_limit: int = DENSE_CELLS_LIMIT,
) -> dict[str, FloatArray]:
    """Every ranking metric at every k for each user (row): the vectors whose means
    `ranking_metrics` reports, kept for confidence intervals and paired tests.

    Users with no relevant item get NaN (they are not counted in the means).
    """
    return _per_user_metrics(recos, relevant, ks, chunk_size, dense_cells_limit)[0]


def _per_user_metrics(
    recos: npt.ArrayLike,
    relevant: sp.spmatrix | sp.sparray,
    ks: Sequence[int],
    chunk_size: int,
    dense_cells_limit: int,
) -> tuple[dict[str, FloatArray], IntArray]:
    """The per-user vectors (NaN for uncounted users) and the rows of the counted users."""
    k_list = _check_ks(ks)
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    rel = _binary_csr(relevant)
    recos_arr = _check_recos(recos, n_rows=rel.shape[0], n_items=rel.shape[1])
    n_relevant_all = np.diff(rel.indptr).astype(np.int64)
    counted = np.flatnonzero(n_relevant_all > 0)
    rel = rel[counted]
    rel.sort_indices()
    n_relevant = n_relevant_all[counted]
    recos_arr = _fit_width(recos_arr[counted], max(k_list))
    out = {
        metric_key(name, k): np.full(n_relevant_all.size, np.nan)
        for name in RANKING_METRICS
        for k in k_list
    }
    for start in range(0, counted.size, chunk_size):
        stop = min(start + chunk_size, counted.size)
        hits = _hits_matrix(recos_arr[start:stop], rel[start:stop], dense_cells_limit)
        rows = counted[start:stop]
        for name, per_user in _PER_USER.items():
            for k in k_list:
                out[metric_key(name, k)][rows] = per_user(hits, n_relevant[start:stop], k)
    return out, counted


def _mean(total: float, count: int) -> float:
    """``total / count``, NaN when nothing was counted."""
    return total / count if count else float("nan")


def _hits_matrix(recos: IntArray, rel: sp.csr_matrix, dense_cells_limit: int) -> BoolArray:
    """True where ``recos[i, j]`` is a relevant item of row i (first occurrence, not padding)."""
    n_rows, n_items = rel.shape
    valid = (recos >= 0) & _first_occurrence_mask(recos)
    safe = np.where(valid, recos, 0)
    if n_rows * n_items < dense_cells_limit:
        found = _lookup_dense(safe, rel)
    else:
        found = _lookup_sorted(safe, rel)
    return found & valid


def _lookup_dense(safe: IntArray, rel: sp.csr_matrix) -> BoolArray:
    """Membership of ``safe[i, j]`` in row i of ``rel`` via the densified rows."""
    dense = rel.toarray()
    return np.asarray(dense[np.arange(safe.shape[0])[:, None], safe], dtype=np.bool_)


def _lookup_sorted(safe: IntArray, rel: sp.csr_matrix) -> BoolArray:
    """Membership of ``safe[i, j]`` in row i of ``rel`` by searching sorted ``row*n_items+item``."""
    n_rows, n_items = rel.shape
    rows = np.repeat(np.arange(n_rows, dtype=np.int64), np.diff(rel.indptr))
    keys = rows * n_items + rel.indices.astype(np.int64)  # sorted: rows ascending, indices sorted
    if keys.size == 0:
        return np.zeros(safe.shape, dtype=np.bool_)
    queries = np.arange(n_rows, dtype=np.int64)[:, None] * n_items + safe
    pos = np.minimum(np.searchsorted(keys, queries), keys.size - 1)
    return np.asarray(keys[pos] == queries, dtype=np.bool_)


def _first_occurrence_mask(recos: IntArray) -> BoolArray:
    """True at the first position of each distinct value within its row."""
    if recos.shape[1] < 2:
        return np.ones(recos.shape, dtype=np.bool_)
    order = np.argsort(recos, axis=1, kind="stable")
    ordered = np.take_along_axis(recos, order, axis=1)
    first_sorted = np.ones(recos.shape, dtype=np.bool_)
    first_sorted[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    first = np.empty_like(first_sorted)
    np.put_along_axis(first, order, first_sorted, axis=1)
    return first


# --------------------------------------------------------------------------- beyond accuracy


def beyond_accuracy_metrics(
    recos: npt.ArrayLike,
    item_popularity: npt.ArrayLike,
    n_train_users: int,
    ks: Sequence[int] = DEFAULT_KS,
) -> dict[str, float]:
    """Catalogue coverage, novelty and average recommendation popularity at every k.

    ``item_popularity[i]`` is the number of training users who interacted with item i, so
    ``p_i = item_popularity[i] / n_train_users``. Padding (-1) is ignored; all users' rows count.
    Returns keys ``metric_key(name, k)`` for each name in ``BEYOND_ACCURACY_METRICS``.
    """
    k_list = _check_ks(ks)
    if n_train_users < 1:
        raise ValueError(f"n_train_users must be >= 1, got {n_train_users}")
    popularity = np.asarray(item_popularity, dtype=np.float64)
    if popularity.ndim != 1:
        raise ValueError(f"item_popularity must be 1-D, got shape {popularity.shape}")
    recos_arr = _check_recos(recos, n_rows=None, n_items=popularity.size)
    share = popularity / n_train_users

    result: dict[str, float] = {}
    for k in k_list:
        top = recos_arr[:, :k]
        items = top[top >= 0]
        result[metric_key("coverage", k)] = coverage(items, popularity)
        result[metric_key("novelty", k)] = novelty(items, share, n_train_users)
        result[metric_key("arp", k)] = average_popularity(items, share)
    return result


def coverage(items: IntArray, popularity: FloatArray) -> float:
    """Distinct recommended items / items with popularity > 0 (the recommendable catalogue).

    Can exceed 1 only if items unseen in training (popularity 0) are recommended.
    """
    catalogue = int(np.count_nonzero(popularity > 0))
    if catalogue == 0:
        return float("nan")
    distinct = int(np.count_nonzero(np.bincount(items, minlength=popularity.size)))
    return distinct / catalogue


def novelty(items: IntArray, share: FloatArray, n_train_users: int) -> float:
    """Mean self-information ``-log2(p_i)`` over recommended slots, ``p_i`` clipped to >= 1/n."""
    if items.size == 0:
        return float("nan")
    p = np.maximum(share[items], 1.0 / n_train_users)
    return float(np.mean(-np.log2(p)))


def average_popularity(items: IntArray, share: FloatArray) -> float:
    """ARP (popularity bias): mean ``p_i`` (unclipped) over recommended slots."""
    if items.size == 0:
        return float("nan")
    return float(np.mean(share[items]))


# --------------------------------------------------------------------------- input checks


def _check_ks(ks: Sequence[int]) -> list[int]:
    """Distinct cut-offs in the given order; each must be a positive int."""
    k_list = list(dict.fromkeys(int(k) for k in ks))
    if not k_list or min(k_list) < 1:
        raise ValueError(f"ks must be a non-empty sequence of positive ints, got {list(ks)}")
    return k_list


def _check_recos(recos: npt.ArrayLike, n_rows: int | None, n_items: int) -> IntArray:
    """``recos`` as a 2-D int64 array with values in ``[-1, n_items)``."""
    arr = np.asarray(recos)
    if arr.ndim != 2:
        raise ValueError(f"recos must be 2-D (n_users x K), got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"recos must hold integer item indices, got dtype {arr.dtype}")
    if n_rows is not None and arr.shape[0] != n_rows:
        raise ValueError(f"recos has {arr.shape[0]} rows but relevant has {n_rows}")
    arr = arr.astype(np.int64, copy=False)
    if arr.size and (arr.min() < -1 or arr.max() >= n_items):
        raise ValueError(
            f"recos values must be -1 (padding) or item indices in [0, {n_items}), "
            f"got range [{arr.min()}, {arr.max()}]"
        )
    return arr


def _binary_csr(relevant: sp.spmatrix | sp.sparray) -> sp.csr_matrix:
    """A canonical boolean CSR copy (no duplicates, no explicit zeros, sorted indices)."""
    if not sp.issparse(relevant):
        raise ValueError(f"relevant must be a scipy sparse matrix, got {type(relevant).__name__}")
    rel = sp.csr_matrix(relevant, dtype=np.bool_, copy=True)
    rel.sum_duplicates()
    rel.eliminate_zeros()
    return rel


def _fit_width(recos: IntArray, width: int) -> IntArray:
    """Truncate to ``width`` columns or right-pad with -1 up to it."""
    if recos.shape[1] >= width:
        return recos[:, :width]
    pad = np.full((recos.shape[0], width - recos.shape[1]), -1, dtype=np.int64)
    return np.hstack([recos, pad])
