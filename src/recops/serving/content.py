"""Item content similarity: metadata overlap, plus learned representations where a model has
item representations built from features (LightFM).

Each item is a sparse vector of tokens `category=...`, `brand=...` and `tag=...` (from the
"|"-separated tags), L2-normalised, so item-item cosine measures metadata overlap. A user's
content profile is the centroid of the items they touched; `profile_scores` is every item's
cosine to it, in [0, 1].
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recops.columns import Columns
from recops.models.base import RecModel

#: Token weights before normalisation (a shared category says more than a shared brand).
FIELD_WEIGHTS = {Columns.category: 1.0, Columns.brand: 0.5, Columns.tags: 1.0}


def item_tokens(meta: pd.DataFrame) -> list[list[tuple[str, float]]]:
    """Weighted tokens of every item (metadata rows in item-index order)."""
    n = len(meta)
    columns = {name: meta[name].tolist() if name in meta else [None] * n for name in FIELD_WEIGHTS}
    out: list[list[tuple[str, float]]] = []
    for i in range(n):
        tokens: dict[str, float] = {}
        for name in (Columns.category, Columns.brand):
            value = columns[name][i]
            if isinstance(value, str) and value:
                tokens[f"{name}={value.strip().lower()}"] = FIELD_WEIGHTS[name]
        tags = columns[Columns.tags][i]
        if isinstance(tags, str) and tags:
            for tag in tags.split("|"):
                if tag.strip():
                    tokens[f"tag={tag.strip().lower()}"] = FIELD_WEIGHTS[Columns.tags]
        out.append(list(tokens.items()))
    return out


def l2_rows(matrix: sp.csr_matrix) -> sp.csr_matrix:
    out = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
    norms = np.sqrt(np.asarray(out.multiply(out).sum(axis=1), dtype=np.float32).ravel())
    norms[norms == 0] = 1.0
    out.data /= np.repeat(norms, np.diff(out.indptr))
    return out


def metadata_matrix(meta: pd.DataFrame) -> sp.csr_matrix:
    """Items x tokens, rows L2-normalised (empty rows for items without metadata)."""
    vocab: dict[str, int] = {}
    rows, cols, vals = [], [], []
    for i, tokens in enumerate(item_tokens(meta)):
        for token, weight in tokens:
            rows.append(i)
            cols.append(vocab.setdefault(token, len(vocab)))
            vals.append(weight)
    matrix = sp.csr_matrix(
        (np.asarray(vals, np.float32), (np.asarray(rows), np.asarray(cols))),
        shape=(len(meta), max(len(vocab), 1)),
    )
    return l2_rows(matrix)


def feature_embeddings(model: RecModel) -> np.ndarray | None:
    """L2-normalised item representations of models that build them from item features."""
    if not model.supports_cold_items:
        return None
    vectors = getattr(model, "item_factors", None)
    if not isinstance(vectors, np.ndarray) or vectors.ndim != 2:
        return None
    norms = np.linalg.norm(vectors, axis=1)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(vectors / norms[:, None], dtype=np.float32)


class ContentIndex:
    """Content similarity of every item to a set of seed items."""

    def __init__(
        self,
        features: sp.csr_matrix,
        embeddings: np.ndarray | None = None,
        embedding_weight: float = 0.5,
    ) -> None:
        self.features = features
        self.embeddings = embeddings
        self.embedding_weight = float(embedding_weight) if embeddings is not None else 0.0
        self.n_items = features.shape[0]
        self.has_metadata = features.nnz > 0

    @classmethod
    def build(
        cls, item_meta: pd.DataFrame, model: RecModel, embedding_weight: float = 0.5
    ) -> ContentIndex:
        return cls(metadata_matrix(item_meta), feature_embeddings(model), embedding_weight)

    @property
    def kind(self) -> str:
        parts = ["metadata"] if self.has_metadata else []
        if self.embeddings is not None and self.embedding_weight > 0:
            parts.append("item representations")
        return " + ".join(parts) or "none"

    def profile_scores(self, seeds: np.ndarray) -> np.ndarray:
        """Cosine of every item to the centroid of `seeds` (item indices), clipped to [0, 1]."""
        seeds = np.asarray(seeds, dtype=np.int64)
        scores = np.zeros(self.n_items, dtype=np.float32)
        if seeds.size == 0:
            return scores
        w_emb = self.embedding_weight
        if self.has_metadata and w_emb < 1.0:
            centroid = np.asarray(self.features[seeds].sum(axis=0), dtype=np.float32).ravel()
            norm = float(np.linalg.norm(centroid))
            if norm > 0:
                scores += (1.0 - w_emb) * (self.features @ (centroid / norm))
        if self.embeddings is not None and w_emb > 0:
            centroid = self.embeddings[seeds].sum(axis=0)
            norm = float(np.linalg.norm(centroid))
            if norm > 0:
                scores += w_emb * np.clip(self.embeddings @ (centroid / norm), 0.0, 1.0)
        return scores
