"""Explanations shared by the models: which of a user's history items contributed most to a
recommended item (`RecModel.explain`)."""

from __future__ import annotations

import numpy as np


def top_contributions(
    history: np.ndarray, contributions: np.ndarray, n: int
) -> list[list[tuple[int, float]]]:
    """Per row of `contributions` (items x history), up to `n` (history item, value) pairs
    with a positive value, largest first (ties: lower item index)."""
    history = np.asarray(history, dtype=np.int64)
    out: list[list[tuple[int, float]]] = []
    for row in np.atleast_2d(np.asarray(contributions, dtype=np.float64)):
        order = np.lexsort((history, -row))[: max(int(n), 0)]
        out.append([(int(history[j]), float(row[j])) for j in order if row[j] > 0])
    return out


def unit(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return np.asarray(vectors / np.where(norms == 0, 1.0, norms), dtype=np.float32)
