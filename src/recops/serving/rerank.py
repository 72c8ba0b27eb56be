"""Maximal marginal relevance (Carbonell & Goldstein, 1998) over the model's candidates.

Each next item maximises `(1 - diversity) * relevance - diversity * max similarity to the items
already chosen`, relevance being the candidates' scores min-max scaled to [0, 1]. With
diversity 0 this is the plain ranking (best score first, ties by lower item index).
"""

from __future__ import annotations

import numpy as np

from recops.serving.scoring import minmax


def mmr(
    candidates: np.ndarray,
    scores: np.ndarray,
    similarity: np.ndarray | None,
    diversity: float,
    k: int,
) -> np.ndarray:
    """Positions (into `candidates`) of the k items MMR picks, in pick order."""
    n = len(candidates)
    plain = np.lexsort((candidates, -scores))
    if diversity <= 0 or similarity is None or n <= 1:
        return plain[:k]
    relevance = minmax(np.asarray(scores, dtype=np.float64)).astype(np.float64)
    nearest = np.full(n, -np.inf)  # max similarity to a chosen item
    free = np.ones(n, dtype=bool)
    picked: list[int] = []
    for _ in range(min(k, n)):
        penalty = np.where(np.isfinite(nearest), nearest, 0.0)
        value = (1.0 - diversity) * relevance - diversity * penalty
        value[~free] = -np.inf
        best = int(np.lexsort((candidates, -value))[0])
        picked.append(best)
        free[best] = False
        nearest = np.maximum(nearest, similarity[best])
    return np.asarray(picked, dtype=np.int64)
