"""Beyond accuracy, vectorised: intra-list diversity, personalisation, Gini, long-tail share
and serendipity (next to coverage / novelty / ARP in `metrics`).

Definitions (k = the cut-off; a user's list is its first k non-padding items):

* **diversity** (intra-list diversity, per user): mean cosine distance between the item-feature
  vectors of every pair of items in the list (one-hot category/brand, multi-hot tags). With unit
  rows f_i and s = sum_i f_i, the pairwise similarities sum to (|s|^2 - sum_i |f_i|^2) / 2, so
  no pair loop. Evidently's `Diversity` divides the distance sum by the list length instead of
  the number of pairs: its value is ours x (k - 1) / 2.
* **personalisation** (per segment): mean over pairs of users of 1 - |L_u and L_v| / k; from the
  item counts c_i of all lists, the ordered-pair overlaps sum to sum_i c_i^2 - sum_u |L_u|.
* **gini** (per segment): Gini index of how often each catalogue item (popularity > 0) is
  recommended; 0 = every item equally often, 1 = one item takes every slot.
* **long_tail** (per segment): share of recommended slots taken by long-tail items - every item
  outside the short head, the most popular items that together hold `head_share` of the
  training interactions (users per item).
* **serendipity** (per user, Ge et al. 2010): share of the k slots that are relevant (a test
  item) and unexpected - not among the k most popular items, what a popularity recommender
  would have shown anyone.
* **feature_serendipity** (per user, Evidently's `Serendipity`): for users with a relevant item
  in the list and training history, 1 - sum_{i in history, j relevant in list} cos(f_i, f_j)
  / |history|: relevant recommendations unlike what the user had.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recops.evaluation.metrics import metric_key

PER_USER_BEYOND = ("diversity", "serendipity", "feature_serendipity")
SEGMENT_BEYOND = ("personalisation", "gini", "long_tail")


def item_features(item_meta: pd.DataFrame, columns: Sequence[str]) -> sp.csr_matrix:
    """Unit-norm rows (items x feature values): one-hot per column, `|`-separated tokens for
    `tags`; items without any feature get a zero row."""
    blocks = []
    for column in columns:
        if column not in item_meta:
            continue
        values = item_meta[column].astype("string").fillna("")
        tokens = values.str.split("|") if column == "tags" else values.map(lambda v: [v])
        exploded = tokens.explode()
        exploded = exploded[exploded.notna() & (exploded != "")]
        codes, _ = pd.factorize(exploded)
        rows = exploded.index.to_numpy()
        if len(codes) == 0:
            continue
        block = sp.csr_matrix(
            (np.ones(len(codes)), (rows, codes)), shape=(len(item_meta), int(codes.max()) + 1)
        )
        block.sum_duplicates()
        block.data[:] = 1.0
        blocks.append(block)
    if not blocks:
        return sp.csr_matrix((len(item_meta), 0))
    matrix = sp.hstack(blocks, format="csr")
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return sp.csr_matrix(sp.diags(1.0 / norms) @ matrix)


def list_matrix(recos: np.ndarray, n_items: int, k: int) -> sp.csr_matrix:
    """Users x items, 1 where the item is in the user's top k (padding ignored)."""
    top = recos[:, :k]
    rows, cols = np.nonzero(top >= 0)
    return sp.csr_matrix((np.ones(len(rows)), (rows, top[rows, cols])), shape=(len(recos), n_items))


def intra_list_diversity(lists: sp.csr_matrix, features: sp.csr_matrix) -> np.ndarray:
    """Per user: mean pairwise cosine distance of the listed items (NaN below 2 items)."""
    m = np.asarray(lists.sum(axis=1)).ravel()
    summed = lists @ features
    sq_norm = np.asarray(summed.multiply(summed).sum(axis=1)).ravel()
    self_sim = lists @ np.asarray(features.multiply(features).sum(axis=1)).ravel()
    pairs = m * (m - 1) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        similarity = (sq_norm - self_sim) / 2 / pairs
    return np.where(m >= 2, 1.0 - similarity, np.nan)


def personalisation(lists: sp.csr_matrix, k: int) -> float:
    """Mean over user pairs of 1 - overlap / k (NaN below 2 users)."""
    n = lists.shape[0]
    if n < 2:
        return float("nan")
    counts = np.asarray(lists.sum(axis=0)).ravel()
    overlaps = float(np.sum(counts**2) - lists.sum())
    return 1.0 - overlaps / (k * n * (n - 1))


def gini_index(counts: np.ndarray) -> float:
    """Gini index of non-negative counts: sum((2i - n - 1) c_(i)) / ((n - 1) sum c) over the
    counts sorted ascending (Evidently's normalisation); NaN when undefined."""
    c = np.sort(np.asarray(counts, dtype=np.float64))
    n, total = len(c), c.sum()
    if n < 2 or total == 0:
        return float("nan")
    index = np.arange(1, n + 1)
    return float(np.sum((2 * index - n - 1) * c) / ((n - 1) * total))


def short_head(popularity: np.ndarray, head_share: float) -> np.ndarray:
    """Boolean mask of the most popular items holding `head_share` of all interactions."""
    order = np.lexsort((np.arange(len(popularity)), -popularity))
    cumulative = np.cumsum(popularity[order])
    total = cumulative[-1] if len(cumulative) else 0.0
    head = np.zeros(len(popularity), dtype=bool)
    if total > 0:
        n_head = int(np.searchsorted(cumulative, head_share * total)) + 1
        head[order[:n_head]] = True
    return head


def serendipity(
    recos: np.ndarray, relevance: sp.csr_matrix, popular_top: np.ndarray, k: int
) -> np.ndarray:
    """Per user: relevant, not-among-the-k-most-popular items in the top k, divided by k."""
    lists = list_matrix(recos, relevance.shape[1], k)
    hits = lists.multiply(relevance.astype(bool)).tocsr()
    unexpected = np.ones(relevance.shape[1])
    unexpected[popular_top[:k]] = 0.0
    return np.asarray(hits @ unexpected).ravel() / k


def feature_serendipity(
    recos: np.ndarray,
    relevance: sp.csr_matrix,
    history: sp.csr_matrix,
    features: sp.csr_matrix,
    k: int,
) -> np.ndarray:
    """Per user (Evidently's definition): 1 - sum of cosine similarities between history items
    and relevant listed items, over the history size; NaN without history or relevant hits."""
    lists = list_matrix(recos, relevance.shape[1], k)
    hits = lists.multiply(relevance.astype(bool)).tocsr()
    history = (history > 0).astype(np.float64)
    size = np.asarray(history.sum(axis=1)).ravel()
    n_hits = np.asarray(hits.sum(axis=1)).ravel()
    similarity = np.asarray((history @ features).multiply(hits @ features).sum(axis=1)).ravel()
    with np.errstate(invalid="ignore", divide="ignore"):
        value = 1.0 - similarity / size
    return np.where((size > 0) & (n_hits > 0), value, np.nan)


def per_user_beyond(
    recos: np.ndarray,
    relevance: sp.csr_matrix,
    history: sp.csr_matrix,
    features: sp.csr_matrix,
    popular_top: np.ndarray,
    ks: Sequence[int],
) -> dict[str, np.ndarray]:
    """`diversity_at_k`, `serendipity_at_k`, `feature_serendipity_at_k` per user."""
    out: dict[str, np.ndarray] = {}
    for k in ks:
        lists = list_matrix(recos, relevance.shape[1], k)
        if features.shape[1]:
            out[metric_key("diversity", k)] = intra_list_diversity(lists, features)
            out[metric_key("feature_serendipity", k)] = feature_serendipity(
                recos, relevance, history, features, k
            )
        out[metric_key("serendipity", k)] = serendipity(recos, relevance, popular_top, k)
    return out


def segment_beyond(
    recos: np.ndarray, popularity: np.ndarray, head: np.ndarray, ks: Sequence[int]
) -> dict[str, float]:
    """`personalisation_at_k`, `gini_at_k`, `long_tail_at_k` of one segment's lists."""
    out: dict[str, float] = {}
    catalogue = popularity > 0
    for k in ks:
        lists = list_matrix(recos, len(popularity), k)
        counts = np.asarray(lists.sum(axis=0)).ravel()
        out[metric_key("personalisation", k)] = personalisation(lists, k)
        out[metric_key("gini", k)] = gini_index(counts[catalogue | (counts > 0)])
        slots = counts.sum()
        out[metric_key("long_tail", k)] = (
            float(counts[~head].sum() / slots) if slots else float("nan")
        )
    return out
