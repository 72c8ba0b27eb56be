"""Population Stability Index with the binning rule of Evidently's `psi` stattest.

Evidently (0.7, `evidently.legacy.calculations.stattests.utils.get_binned_data`) bins a
numerical column with more than 20 distinct reference values into Sturges histogram bins over
reference and current together; anything else (categorical columns, or few distinct values) is
binned by value. Empty bins are filled with 0.0001 (or with the smallest non-zero share / 1e6
when that share is itself <= 0.0001) so the logarithm stays finite. Then

    PSI = sum_b (ref_b - cur_b) * ln(ref_b / cur_b)

and a column drifts when PSI >= threshold. `psi()` reproduces those numbers (the tests check it
against a hand computation and against Evidently), so the summary can be trusted without
opening the report, and so the worker could score a feature without Evidently if it had to.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

#: Evidently bins a numerical column by value when the reference has at most this many values.
MAX_DISTINCT_FOR_VALUE_BINS = 20
_FILL = 1e-4

Bins = int | Sequence[float] | np.ndarray | None


def _clean(values: Any) -> pd.Series:
    series = pd.Series(values).replace([np.inf, -np.inf], np.nan).dropna()
    return series.reset_index(drop=True)


def _fill_zeros(shares: np.ndarray) -> np.ndarray:
    shares = shares.astype(np.float64).copy()
    nonzero = shares[shares != 0]
    if nonzero.size == 0:
        return shares
    smallest = float(nonzero.min())
    shares[shares == 0] = smallest / 1e6 if smallest <= _FILL else _FILL
    return shares


def binned_shares(
    reference: Any, current: Any, bins: Bins = None, numerical: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Share of each sample per bin (zeros filled as Evidently does).

    `bins=None` applies Evidently's rule; an int asks for that many equal-width bins over both
    samples; a sequence gives the bin edges. Categorical data (`numerical=False`) is always
    binned by value.
    """
    ref, cur = _clean(reference), _clean(current)
    if ref.empty or cur.empty:
        raise ValueError("PSI needs at least one value in each sample")
    by_value = not numerical or (bins is None and ref.nunique() <= MAX_DISTINCT_FOR_VALUE_BINS)
    if by_value:
        keys = list(set(ref.unique()) | set(cur.unique()))
        ref_counts = ref.value_counts().reindex(keys, fill_value=0).to_numpy()
        cur_counts = cur.value_counts().reindex(keys, fill_value=0).to_numpy()
    else:
        both = np.concatenate([ref.to_numpy(np.float64), cur.to_numpy(np.float64)])
        edges = np.histogram_bin_edges(both, bins="sturges" if bins is None else bins)
        ref_counts = np.histogram(ref.to_numpy(np.float64), edges)[0]
        cur_counts = np.histogram(cur.to_numpy(np.float64), edges)[0]
    return _fill_zeros(ref_counts / len(ref)), _fill_zeros(cur_counts / len(cur))


def psi(reference: Any, current: Any, bins: Bins = None, numerical: bool = True) -> float:
    """PSI of `current` against `reference` (see the module docstring for the binning)."""
    ref, cur = binned_shares(reference, current, bins, numerical)
    return float(np.sum((ref - cur) * np.log(ref / cur)))
