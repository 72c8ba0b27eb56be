"""Bidirectional maps between external ids (strings from the data) and dense indices."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from recops.errors import UnknownIdError


@dataclass(frozen=True)
class IdMap:
    """External ids in index order; `index_of` is the inverse lookup."""

    external_ids: np.ndarray
    kind: str = "id"
    _index: pd.Index = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        ids = np.asarray(self.external_ids, dtype=object)
        object.__setattr__(self, "external_ids", ids)
        object.__setattr__(self, "_index", pd.Index(ids))
        if not self._index.is_unique:
            dupes = self._index[self._index.duplicated()].unique()[:5].tolist()
            raise ValueError(f"duplicate {self.kind} ids in id map: {dupes}")

    def __len__(self) -> int:
        return len(self.external_ids)

    def __contains__(self, external_id: object) -> bool:
        return external_id in self._index

    def lookup(self, external_ids: Iterable[object]) -> np.ndarray:
        """Indices of `external_ids`, -1 where unknown."""
        return np.asarray(self._index.get_indexer(pd.Index(list(external_ids))), dtype=np.int64)

    def to_internal(self, external_ids: Iterable[object]) -> np.ndarray:
        """Indices of `external_ids`; raises `UnknownIdError` naming the unknown ones."""
        ids = list(external_ids)
        idx = self.lookup(ids)
        if (idx < 0).any():
            unknown = [ids[i] for i in np.flatnonzero(idx < 0)[:10]]
            raise UnknownIdError(
                f"unknown {self.kind} id(s) {unknown}: not in the model's training data "
                f"({len(self)} known {self.kind}s)"
            )
        return idx

    def to_external(self, indices: np.ndarray) -> np.ndarray:
        """External ids for indices (same shape); -1 padding becomes None."""
        indices = np.asarray(indices)
        out = np.empty(indices.shape, dtype=object)
        valid = indices >= 0
        out[valid] = self.external_ids[indices[valid]]
        out[~valid] = None
        return out
