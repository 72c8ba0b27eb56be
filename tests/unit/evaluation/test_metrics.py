"""Ranking and beyond-accuracy metrics against hand-computed values and a per-user reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from recops.evaluation.metrics import (
    BEYOND_ACCURACY_METRICS,
    RANKING_METRICS,
    beyond_accuracy_metrics,
    metric_key,
    ranking_metrics,
)

LOG2_3 = math.log2(3)


def _relevant(rows: list[list[int]], n_items: int) -> sp.csr_matrix:
    """Binary CSR with the given relevant item indices per row."""
    indptr = np.cumsum([0, *(len(r) for r in rows)])
    indices = np.array([i for r in rows for i in r], dtype=np.int64)
    data = np.ones(indices.size, dtype=np.float32)
    return sp.csr_matrix((data, indices, indptr), shape=(len(rows), n_items))


def _both_paths(recos: np.ndarray, relevant: sp.csr_matrix, ks: tuple[int, ...]) -> dict:
    """Metrics via the dense lookup, after checking the sorted-index lookup agrees exactly."""
    dense = ranking_metrics(recos, relevant, ks, dense_cells_limit=10**12)
    lookup = ranking_metrics(recos, relevant, ks, dense_cells_limit=0)
    assert dense == lookup
    return dense


def test_metric_key_and_names() -> None:
    assert metric_key("ndcg", 10) == "ndcg_at_10"
    assert metric_key("hit_rate", 5) == "hit_rate_at_5"
    assert RANKING_METRICS == ("precision", "recall", "ndcg", "map", "mrr", "hit_rate")
    assert BEYOND_ACCURACY_METRICS == ("coverage", "novelty", "arp")


def test_single_user_hand_computed() -> None:
    # relevant {1, 3}, recos [3, 5, 1] -> hits [1, 0, 1]
    res = _both_paths(np.array([[3, 5, 1]]), _relevant([[1, 3]], n_items=6), ks=(1, 3, 5))
    # k=3: precision = 2/3; recall = 2/2 = 1
    assert res["precision_at_3"] == pytest.approx(2 / 3)
    assert res["recall_at_3"] == pytest.approx(1.0)
    # DCG = 1/log2(2) + 1/log2(4) = 1.5; IDCG over min(2,3)=2 ideal hits = 1 + 1/log2(3)
    assert res["ndcg_at_3"] == pytest.approx(1.5 / (1 + 1 / LOG2_3))
    # AP = (P@1 + P@3) / min(2,3) = (1 + 2/3) / 2 = 5/6
    assert res["map_at_3"] == pytest.approx(5 / 6)
    assert res["mrr_at_3"] == pytest.approx(1.0)  # first hit at rank 1
    assert res["hit_rate_at_3"] == pytest.approx(1.0)
    # k=1: hits [1]; precision 1/1, recall 1/min(2,1) = 1, nDCG 1/1, AP = P@1 / min(2,1) = 1
    assert res["precision_at_1"] == pytest.approx(1.0)
    assert res["recall_at_1"] == pytest.approx(1.0)
    assert res["ndcg_at_1"] == pytest.approx(1.0)
    assert res["map_at_1"] == pytest.approx(1.0)
    # k=5 > K_max=3: missing slots are misses -> precision 2/5; the rest as at k=3
    assert res["precision_at_5"] == pytest.approx(2 / 5)
    assert res["recall_at_5"] == pytest.approx(1.0)
    assert res["ndcg_at_5"] == pytest.approx(1.5 / (1 + 1 / LOG2_3))
    assert res["map_at_5"] == pytest.approx(5 / 6)
    assert res["n_users"] == 1.0


def test_means_ignore_users_without_relevant_and_padding_is_a_miss() -> None:
    recos = np.array(
        [
            [3, 5, 1],  # relevant {1,3}: hits [1,0,1] (as in the single-user test)
            [2, 4, 0],  # relevant {0}:   hits [0,0,1]
            [0, 1, 2],  # relevant {}:    ignored entirely
            [5, -1, -1],  # relevant {2,4}: padding, hits [0,0,0]
        ]
    )
    relevant = _relevant([[1, 3], [0], [], [2, 4]], n_items=6)
    res = _both_paths(recos, relevant, ks=(1, 3))
    assert res["n_users"] == 3.0
    # user 1 at k=3: P = 1/3, R = 1/1, DCG = 1/log2(4) = 0.5 (IDCG 1), AP = (1/3)/1, RR = 1/3
    assert res["precision_at_3"] == pytest.approx((2 / 3 + 1 / 3 + 0) / 3)
    assert res["recall_at_3"] == pytest.approx((1 + 1 + 0) / 3)
    assert res["ndcg_at_3"] == pytest.approx((1.5 / (1 + 1 / LOG2_3) + 0.5 + 0) / 3)
    assert res["map_at_3"] == pytest.approx((5 / 6 + 1 / 3 + 0) / 3)  # = 7/18
    assert res["mrr_at_3"] == pytest.approx((1 + 1 / 3 + 0) / 3)  # = 4/9
    assert res["hit_rate_at_3"] == pytest.approx(2 / 3)
    # k=1: only user 0 hits (rank 1) -> every metric sums 1 (recall 1/min(2,1)) over 3 users
    assert res["precision_at_1"] == pytest.approx(1 / 3)
    assert res["recall_at_1"] == pytest.approx(1 / 3)
    assert res["mrr_at_1"] == pytest.approx(1 / 3)


def test_ndcg_and_map_ideal_is_capped_at_k() -> None:
    # relevant {0,1,2,3}, recos [9, 0] -> hits [0, 1]; k=2 so ideal has min(4,2)=2 hits
    res = _both_paths(np.array([[9, 0]]), _relevant([[0, 1, 2, 3]], n_items=10), ks=(2,))
    assert res["ndcg_at_2"] == pytest.approx((1 / LOG2_3) / (1 + 1 / LOG2_3))
    assert res["map_at_2"] == pytest.approx((1 / 2) / 2)  # P@2 = 1/2, divided by min(4,2)
    assert res["mrr_at_2"] == pytest.approx(1 / 2)
    assert res["recall_at_2"] == pytest.approx(1 / 2)  # 1 hit / min(4, 2)


def test_repeated_item_counts_once() -> None:
    # relevant {1}, recos [1, 1, 2] -> hits [1, 0, 0]: the repeat is not a second hit
    res = _both_paths(np.array([[1, 1, 2]]), _relevant([[1]], n_items=3), ks=(3,))
    assert res["precision_at_3"] == pytest.approx(1 / 3)
    assert res["recall_at_3"] == pytest.approx(1.0)
    assert res["ndcg_at_3"] == pytest.approx(1.0)


def test_no_counted_users_gives_nan() -> None:
    res = ranking_metrics(np.array([[0, 1]]), _relevant([[]], n_items=2), ks=(2,))
    assert res["n_users"] == 0.0
    assert all(math.isnan(res[metric_key(m, 2)]) for m in RANKING_METRICS)


def test_result_keys() -> None:
    res = ranking_metrics(np.array([[0]]), _relevant([[0]], n_items=1), ks=(5, 10))
    expected = {metric_key(m, k) for m in RANKING_METRICS for k in (5, 10)} | {"n_users"}
    assert set(res) == expected


def test_relevant_values_duplicates_and_explicit_zeros() -> None:
    # row 0: item 1 stored twice (value 3 overall), item 2 is an explicit zero (not relevant)
    rel = sp.csr_matrix(
        (np.array([2.0, 1.0, 0.0]), np.array([1, 1, 2]), np.array([0, 3])), shape=(1, 4)
    )
    before = rel.copy()
    res = _both_paths(np.array([[2, 1]]), rel, ks=(2,))
    assert res["recall_at_2"] == pytest.approx(1.0)  # 1 relevant item, found at rank 2
    assert res["mrr_at_2"] == pytest.approx(0.5)
    assert (rel != before).nnz == 0 and rel.nnz == 3  # caller's matrix untouched
    assert ranking_metrics(np.array([[2, 1]]), sp.csr_array(rel), ks=(2,)) == res


def test_invalid_inputs() -> None:
    rel = _relevant([[0], [1]], n_items=3)
    with pytest.raises(ValueError, match="rows"):
        ranking_metrics(np.array([[0, 1]]), rel)
    with pytest.raises(ValueError, match="item indices"):
        ranking_metrics(np.array([[0], [3]]), rel)
    with pytest.raises(ValueError, match="item indices"):
        ranking_metrics(np.array([[0], [-2]]), rel)
    with pytest.raises(ValueError, match="integer"):
        ranking_metrics(np.array([[0.0], [1.0]]), rel)
    with pytest.raises(ValueError, match="ks"):
        ranking_metrics(np.array([[0], [1]]), rel, ks=(0, 5))
    with pytest.raises(ValueError, match="chunk_size"):
        ranking_metrics(np.array([[0], [1]]), rel, chunk_size=0)
    with pytest.raises(ValueError, match="sparse"):
        ranking_metrics(np.array([[0], [1]]), np.eye(2))


# --------------------------------------------------------------------------- reference check


def _reference(recos: np.ndarray, relevant: sp.csr_matrix, ks: tuple[int, ...]) -> dict:
    """Straightforward per-user loop, written independently of the vectorised code."""
    sums = {metric_key(m, k): 0.0 for m in RANKING_METRICS for k in ks}
    n_users = 0
    for row in range(recos.shape[0]):
        rel = set(relevant.indices[relevant.indptr[row] : relevant.indptr[row + 1]].tolist())
        if not rel:
            continue
        n_users += 1
        for k in ks:
            seen: set[int] = set()
            hit_ranks = []
            for rank, item in enumerate(recos[row, :k].tolist(), start=1):
                if item >= 0 and item not in seen and item in rel:
                    hit_ranks.append(rank)
                seen.add(item)
            n_ideal = min(len(rel), k)
            sums[metric_key("precision", k)] += len(hit_ranks) / k
            sums[metric_key("recall", k)] += len(hit_ranks) / n_ideal
            dcg = sum(1 / math.log2(r + 1) for r in hit_ranks)
            idcg = sum(1 / math.log2(r + 1) for r in range(1, n_ideal + 1))
            sums[metric_key("ndcg", k)] += dcg / idcg
            ap = sum((i + 1) / r for i, r in enumerate(hit_ranks)) / n_ideal
            sums[metric_key("map", k)] += ap
            sums[metric_key("mrr", k)] += 1 / hit_ranks[0] if hit_ranks else 0.0
            sums[metric_key("hit_rate", k)] += 1.0 if hit_ranks else 0.0
    out = {key: value / n_users for key, value in sums.items()}
    out["n_users"] = float(n_users)
    return out


def _random_case(seed: int, n_users: int = 300, n_items: int = 40, k_max: int = 12) -> tuple:
    """Random recos (with -1 padding and repeats) and relevance (with empty rows)."""
    rng = np.random.default_rng(seed)
    recos = rng.integers(0, n_items, size=(n_users, k_max))
    lengths = rng.integers(0, k_max + 1, size=n_users)
    recos[np.arange(k_max)[None, :] >= lengths[:, None]] = -1
    dense = rng.random((n_users, n_items)) < rng.uniform(0, 0.2, size=(n_users, 1))
    return recos, sp.csr_matrix(dense.astype(np.float32))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_per_user_reference(seed: int) -> None:
    recos, relevant = _random_case(seed)
    ks = (1, 3, 5, 12, 15)
    expected = _reference(recos, relevant, ks)
    for limit in (10**12, 0):  # dense lookup, sorted-index lookup
        got = ranking_metrics(recos, relevant, ks, chunk_size=64, dense_cells_limit=limit)
        assert got.keys() == expected.keys()
        for key, value in expected.items():
            assert got[key] == pytest.approx(value, rel=1e-12, abs=1e-12), key


def test_chunking_and_lookup_paths_agree() -> None:
    recos, relevant = _random_case(seed=7, n_users=257)
    ks = (5, 10)
    base = ranking_metrics(recos, relevant, ks, chunk_size=10_000)
    for chunk_size in (1, 2, 100):
        for limit in (10**12, 0):
            got = ranking_metrics(recos, relevant, ks, chunk_size, dense_cells_limit=limit)
            assert got.keys() == base.keys()
            for key in base:
                assert got[key] == pytest.approx(base[key], rel=1e-12, abs=1e-15), key


# --------------------------------------------------------------------------- beyond accuracy


def test_beyond_accuracy_hand_computed() -> None:
    # 4 training users; p = pop/4 = [1, .5, .25, 0, .25]; catalogue = 4 items with pop > 0
    popularity = np.array([4, 2, 1, 0, 1])
    recos = np.array([[0, 1, -1], [0, 2, 4]])
    res = beyond_accuracy_metrics(recos, popularity, n_train_users=4, ks=(1, 3))
    # k=1: slots [0, 0] -> 1 distinct of 4; -log2(1) = 0; mean p = 1
    assert res["coverage_at_1"] == pytest.approx(1 / 4)
    assert res["novelty_at_1"] == pytest.approx(0.0)
    assert res["arp_at_1"] == pytest.approx(1.0)
    # k=3: slots [0, 1, 0, 2, 4] (padding dropped) -> distinct {0,1,2,4} = 4 of 4
    assert res["coverage_at_3"] == pytest.approx(1.0)
    # -log2 p: 0, 1, 0, 2, 2 -> mean 5/5 = 1
    assert res["novelty_at_3"] == pytest.approx(1.0)
    # p: 1, .5, 1, .25, .25 -> mean 3/5
    assert res["arp_at_3"] == pytest.approx(0.6)
    assert set(res) == {metric_key(m, k) for m in BEYOND_ACCURACY_METRICS for k in (1, 3)}


def test_beyond_accuracy_cold_item_is_clipped() -> None:
    # item 3 has popularity 0: p clipped to 1/4 for novelty (-log2(1/4) = 2), ARP uses p = 0
    res = beyond_accuracy_metrics(np.array([[3]]), np.array([4, 2, 1, 0]), 4, ks=(1,))
    assert res["novelty_at_1"] == pytest.approx(2.0)
    assert res["arp_at_1"] == pytest.approx(0.0)
    assert res["coverage_at_1"] == pytest.approx(1 / 3)


def test_beyond_accuracy_only_padding() -> None:
    res = beyond_accuracy_metrics(np.full((2, 3), -1), np.array([1, 1]), 2, ks=(3,))
    assert res["coverage_at_3"] == 0.0
    assert math.isnan(res["novelty_at_3"]) and math.isnan(res["arp_at_3"])


def test_beyond_accuracy_invalid_inputs() -> None:
    with pytest.raises(ValueError, match="item indices"):
        beyond_accuracy_metrics(np.array([[5]]), np.array([1, 1]), 2)
    with pytest.raises(ValueError, match="n_train_users"):
        beyond_accuracy_metrics(np.array([[0]]), np.array([1, 1]), 0)
