"""Item-item nearest neighbours (implicit cosine / BM25 / TF-IDF) behind the contract."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from implicit.nearest_neighbours import (
    BM25Recommender,
    CosineRecommender,
    ItemItemRecommender,
    TFIDFRecommender,
)
from implicit.utils import ParameterWarning
from threadpoolctl import threadpool_limits

from recops.errors import ConfigError
from recops.features.dataset import Dataset
from recops.models.base import RecModel
from recops.models.explain import top_contributions
from recops.models.profiles import RecencyProfile

_SIMILARITY = "similarity.npz"


def _cosine(model: ItemKNNModel) -> ItemItemRecommender:
    return CosineRecommender(K=model.k_neighbours, num_threads=model.num_threads)


def _bm25(model: ItemKNNModel) -> ItemItemRecommender:
    return BM25Recommender(
        K=model.k_neighbours, K1=model.bm25_k1, B=model.bm25_b, num_threads=model.num_threads
    )


def _tfidf(model: ItemKNNModel) -> ItemItemRecommender:
    return TFIDFRecommender(K=model.k_neighbours, num_threads=model.num_threads)


#: `similarity` option -> builder of the implicit estimator that computes it.
SIMILARITIES: dict[str, Callable[[ItemKNNModel], ItemItemRecommender]] = {
    "cosine": _cosine,
    "bm25": _bm25,
    "tfidf": _tfidf,
}


class ItemKNNModel(RecencyProfile, RecModel):
    """Scores are a user's interaction weights times a sparse item x item similarity matrix
    that keeps each item's `k_neighbours` most similar items (as implicit's own scorer does).
    `recency_half_life` (interactions; None = off) decays older interactions in that profile
    (`recops.models.profiles`)."""

    model_type = "itemknn"
    supports_explain = True

    def __init__(
        self,
        similarity: str = "cosine",
        k_neighbours: int = 100,
        bm25_k1: float = 1.2,
        bm25_b: float = 0.75,
        num_threads: int = 0,
        show_progress: bool = True,
        recency_half_life: float | None = None,
    ) -> None:
        super().__init__()
        if similarity not in SIMILARITIES:
            raise ConfigError(
                f"unknown model.similarity {similarity!r}; choose one of {sorted(SIMILARITIES)}"
            )
        self.similarity = similarity
        self.k_neighbours = int(k_neighbours)
        self.bm25_k1 = float(bm25_k1)
        self.bm25_b = float(bm25_b)
        self.num_threads = int(num_threads)
        self.show_progress = bool(show_progress)
        self.recency_half_life = None if recency_half_life is None else float(recency_half_life)
        self.similarity_matrix: sp.csr_matrix | None = None

    def build_estimator(self) -> ItemItemRecommender:
        """The bare implicit estimator for the configured similarity."""
        return SIMILARITIES[self.similarity](self)

    def _fit(self, dataset: Dataset) -> None:
        self.similarity_matrix = None
        self._fit_recency(dataset)
        estimator = self.build_estimator()
        with threadpool_limits(1, "blas"), warnings.catch_warnings():
            # implicit's own weighting helpers hand it COO and it then warns about itself.
            warnings.filterwarnings("ignore", "Method expects CSR input", ParameterWarning)
            estimator.fit(dataset.user_items, show_progress=self.show_progress)
        self.similarity_matrix = sp.csr_matrix(estimator.similarity, dtype=np.float32)

    def _fitted_similarity(self) -> sp.csr_matrix:
        if self.similarity_matrix is None:
            raise RuntimeError("ItemKNNModel is not fitted: call fit() or load() first")
        return self.similarity_matrix

    def _score_users(self, user_idx: np.ndarray) -> np.ndarray:
        rows = self._decayed(self._fitted_seen()[user_idx], user_idx)
        return (rows @ self._fitted_similarity()).toarray()

    def _score_similar(self, item_idx: np.ndarray) -> np.ndarray:
        """An item's row of the similarity matrix (0 beyond its k nearest neighbours)."""
        return self._fitted_similarity()[item_idx].toarray()

    def explain(self, user: int, item_idx: np.ndarray, n: int) -> list[list[tuple[int, float]]]:
        """Score of item i = sum over history items j of profile_j * S[j, i]: the largest terms."""
        profile = sp.csr_matrix(self._decayed(self._fitted_seen()[[user]], np.array([user])))
        weights = self._fitted_similarity()[profile.indices][:, np.asarray(item_idx, np.int64)]
        dense = weights.toarray() * profile.data[:, None]
        return top_contributions(profile.indices, dense.T, n)

    def _save_state(self, folder: Path) -> None:
        sp.save_npz(folder / _SIMILARITY, self._fitted_similarity(), compressed=False)
        self._save_recency(folder)

    def _load_state(self, folder: Path) -> None:
        self.similarity_matrix = sp.load_npz(folder / _SIMILARITY).tocsr()
        self._load_recency(folder)
