"""Paired comparison of two models on the same users: per-user differences, a paired
bootstrap confidence interval and p-value, the Wilcoxon signed-rank test (scipy) and effect
sizes. Used for model vs popularity baseline in every evaluation and for candidate vs champion
in the registry's metric gate and `recops registry diff`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats

from recops.evaluation.uncertainty import bootstrap_means, percentile_interval, weighted_mean


@dataclass(frozen=True)
class PairedComparison:
    """`a` vs `b` on `metric` over `n_users` shared users; `diff` = mean(a - b)."""

    metric: str
    n_users: int
    mean_a: float
    mean_b: float
    diff: float
    ci_low: float
    ci_high: float
    confidence: float
    p_bootstrap: float
    p_wilcoxon: float
    #: Standardised mean difference of the pairs (Cohen's d_z = mean(d) / sd(d)).
    effect_size: float
    #: Matched-pairs rank-biserial correlation (W+ - W-) / (W+ + W-), in [-1, 1].
    rank_biserial: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def line(self, a: str = "a", b: str = "b") -> str:
        return (
            f"{self.metric} {a} {self.mean_a:.4f} vs {b} {self.mean_b:.4f}: "
            f"diff {self.diff:+.4f} ({self.confidence:.0%} CI "
            f"{self.ci_low:+.4f}..{self.ci_high:+.4f}), "
            f"p={self.p_wilcoxon:.3g} (Wilcoxon), p={self.p_bootstrap:.3g} (bootstrap), "
            f"d_z={self.effect_size:+.3f}, n={self.n_users}"
        )


def paired_comparison(
    metric: str,
    a: np.ndarray,
    b: np.ndarray,
    weights: np.ndarray | None = None,
    samples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> PairedComparison:
    """Compare per-user values `a` and `b` (same users, same order; NaN pairs dropped)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired values differ in shape: {a.shape} vs {b.shape}")
    keep = np.isfinite(a) & np.isfinite(b)
    w = None if weights is None else np.asarray(weights, dtype=np.float64)[keep]
    a, b = a[keep], b[keep]
    d = a - b
    nan = float("nan")
    if len(d) == 0:
        return PairedComparison(metric, 0, nan, nan, nan, nan, nan, confidence, nan, nan, nan, nan)
    replicates = bootstrap_means(d[None, :], w, samples, seed)[:, 0]
    low, high = percentile_interval(replicates, confidence)
    return PairedComparison(
        metric=metric,
        n_users=len(d),
        mean_a=weighted_mean(a, w),
        mean_b=weighted_mean(b, w),
        diff=weighted_mean(d, w),
        ci_low=low,
        ci_high=high,
        confidence=confidence,
        p_bootstrap=bootstrap_p_value(replicates),
        p_wilcoxon=wilcoxon_p_value(d),
        effect_size=_cohen_dz(d),
        rank_biserial=rank_biserial(d),
    )


def bootstrap_p_value(replicates: np.ndarray) -> float:
    """Two-sided p-value of "mean difference = 0" from bootstrap replicates of the mean
    difference: twice the smaller share of replicates on either side of 0 (at least 1/B)."""
    finite = replicates[np.isfinite(replicates)]
    if finite.size == 0:
        return float("nan")
    below = np.count_nonzero(finite <= 0) / finite.size
    above = np.count_nonzero(finite >= 0) / finite.size
    return float(min(1.0, max(2 * min(below, above), 1 / finite.size)))


def wilcoxon_p_value(d: np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p-value (zero differences handled by Pratt's method, so
    users where both models score the same still count); 1.0 when every difference is 0."""
    if not np.any(d != 0):
        return 1.0
    return float(stats.wilcoxon(d, zero_method="pratt", alternative="two-sided").pvalue)


def rank_biserial(d: np.ndarray) -> float:
    nonzero = d[d != 0]
    if nonzero.size == 0:
        return 0.0
    ranks = stats.rankdata(np.abs(nonzero))
    plus, minus = ranks[nonzero > 0].sum(), ranks[nonzero < 0].sum()
    return float((plus - minus) / (plus + minus))


def _cohen_dz(d: np.ndarray) -> float:
    if len(d) < 2:
        return float("nan")
    sd = float(np.std(d, ddof=1))
    if sd == 0 or not math.isfinite(sd):
        return 0.0 if float(np.mean(d)) == 0 else math.copysign(math.inf, float(np.mean(d)))
    return float(np.mean(d)) / sd
