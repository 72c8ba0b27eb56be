"""The fast and threaded top-k paths give exactly the reference top-k (ties to the lower index,
-inf as -1/NaN padding, k beyond the catalogue)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recops.features.dataset import Dataset
from recops.models.popularity import PopularityModel
from recops.models.topk import (
    _top_k_mask,
    block_max_top_k,
    block_size,
    chunked_top_k,
    mask_seen,
    shared_ranking_top_k,
    top_k,
)


def reference_top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The plain definition: mask of the k best (lowest index among ties), then sort."""
    n_rows, n_cols = scores.shape
    kk = min(k, n_cols)
    part = np.nonzero(_top_k_mask(scores, kk))[1].reshape(n_rows, kk)
    vals = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -vals), axis=1)
    ids = np.take_along_axis(part, order, axis=1)
    vals = np.take_along_axis(vals, order, axis=1).astype(np.float32)
    bad = ~np.isfinite(vals)
    ids[bad], vals[bad] = -1, np.nan
    pad = ((0, 0), (0, max(0, k - n_cols)))
    return np.pad(ids, pad, constant_values=-1), np.pad(vals, pad, constant_values=np.nan)


def coarse_scores(rng: np.random.Generator, rows: int, cols: int) -> np.ndarray:
    """Few distinct values (ties everywhere), some -inf, one all -inf row, one mostly -inf."""
    scores = rng.integers(0, 6, size=(rows, cols)).astype(np.float32)
    scores[rng.random(scores.shape) < 0.3] = -np.inf
    scores[0] = -np.inf
    scores[1, 3:] = -np.inf
    return scores


@pytest.mark.parametrize("cols", [2048, 5000, 9001])
def test_block_max_top_k_equals_the_reference(cols: int) -> None:
    rng = np.random.default_rng(cols)
    scores = coarse_scores(rng, 7, cols)
    for k in (1, 5, 10, 20):
        ref_ids, ref_vals = reference_top_k(scores, k)
        for block in {8, 32, block_size(cols, k)}:
            ids, vals = block_max_top_k(scores, k, block)
            np.testing.assert_array_equal(ids, ref_ids)
            np.testing.assert_array_equal(vals, ref_vals)
    smooth = rng.standard_normal((5, cols)).astype(np.float32)
    np.testing.assert_array_equal(block_max_top_k(smooth, 10)[0], reference_top_k(smooth, 10)[0])


def test_block_max_top_k_when_the_best_cells_share_a_block_or_sit_in_the_tail() -> None:
    """Blocks are strided column sets plus a partial tail: many winners in one block (columns
    j, j + n_blocks, ...) or all of them past the last full block must still all be found."""
    cols, block, k = 9001, 32, 10
    n_blocks = cols // block
    scores = np.zeros((3, cols), dtype=np.float32)
    scores[0, 7 + n_blocks * np.arange(k + 2)] = np.arange(k + 2, 0, -1)  # one strided block
    scores[1, n_blocks * block :] = 5.0  # the whole tail ties: lowest indices win
    scores[2, [0, 1, cols - 1]] = [3.0, 3.0, 4.0]
    ids, vals = block_max_top_k(scores, k, block)
    ref_ids, ref_vals = reference_top_k(scores, k)
    np.testing.assert_array_equal(ids, ref_ids)
    np.testing.assert_array_equal(vals, ref_vals)


def test_top_k_on_wide_rows_and_beyond_the_catalogue() -> None:
    rng = np.random.default_rng(1)
    wide = coarse_scores(rng, 4, 4200)
    np.testing.assert_array_equal(top_k(wide, 12)[0], reference_top_k(wide, 12)[0])
    narrow = coarse_scores(rng, 4, 6)
    ids, vals = top_k(narrow, 9)  # k > n_items: padding
    assert ids.shape == (4, 9)
    np.testing.assert_array_equal(ids, reference_top_k(narrow, 9)[0])
    assert (ids[:, 6:] == -1).all() and np.isnan(vals[:, 6:]).all()


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_threaded_chunks_equal_the_reference(threads: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(threads)
    scores = coarse_scores(rng, 50, 300)
    seen = sp.random(50, 300, density=0.1, format="csr", random_state=2, dtype=np.float32)
    monkeypatch.setattr("recops.models.topk.CHUNK_CELLS", 7 * 300)  # 7 users per chunk
    done: list[int] = []

    def score_chunk(users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        block = scores[users].copy()
        mask_seen(block, seen, users)
        return top_k(block, 8)

    users = rng.permutation(50)
    ids, vals = chunked_top_k(users, 8, 300, score_chunk, threads, done.append)
    expected = scores[users].copy()
    mask_seen(expected, seen, users)
    ref_ids, ref_vals = reference_top_k(expected, 8)
    np.testing.assert_array_equal(ids, ref_ids)
    np.testing.assert_array_equal(vals, ref_vals)
    assert sum(done) == 50 and max(done) == 7


def test_shared_ranking_equals_masking_every_row() -> None:
    rng = np.random.default_rng(5)
    ranking = rng.integers(0, 4, size=40).astype(np.float32)  # ties
    ranking[[3, 9]] = -np.inf  # never recommended (filtered)
    seen = sp.random(30, 40, density=0.3, format="lil", random_state=4, dtype=np.float32)
    seen[7, :] = 1.0  # a user who has seen everything
    seen = sp.csr_matrix(seen)
    users = rng.permutation(30)
    for k in (1, 5, 45):
        ids, vals = shared_ranking_top_k(ranking, users, seen, k)
        dense = np.repeat(ranking[None, :], len(users), axis=0)
        mask_seen(dense, seen, users)
        ref_ids, ref_vals = reference_top_k(dense, k)
        np.testing.assert_array_equal(ids, ref_ids)
        np.testing.assert_array_equal(vals, ref_vals)
    unseen_ids, _ = shared_ranking_top_k(ranking, users, None, 3)
    assert (unseen_ids == unseen_ids[0]).all()


def test_popularity_recommend_equals_the_dense_path(random_dataset: Dataset) -> None:
    model = PopularityModel().fit(random_dataset)
    users = np.arange(random_dataset.n_users)
    ids, vals = model.recommend(users, k=7, filter_items=np.array([0, 1]))
    dense = np.repeat(model.popularity[None, :], len(users), axis=0).astype(np.float32)
    dense[:, [0, 1]] = -np.inf
    mask_seen(dense, model.seen, users)
    ref_ids, ref_vals = reference_top_k(dense, 7)
    np.testing.assert_array_equal(ids, ref_ids)
    np.testing.assert_array_equal(vals, ref_vals)
