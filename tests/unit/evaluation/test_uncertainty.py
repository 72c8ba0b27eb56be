"""Bootstrap intervals cover the truth at the stated rate; paired tests find a planted
difference and not a null one."""

from __future__ import annotations

import numpy as np
import pytest

from recops.evaluation.significance import paired_comparison, rank_biserial
from recops.evaluation.uncertainty import bootstrap_means, confidence_intervals


def test_interval_covers_the_true_mean_at_the_stated_rate() -> None:
    """300 simulated evaluations of 400 users with a skewed per-user metric (Beta(0.5, 3),
    like nDCG: mass at 0): the 95% interval holds the true mean 0.5/3.5 about 95% of the time
    (binomial sd of the rate over 300 trials is 1.3 points)."""
    rng = np.random.default_rng(0)
    truth = 0.5 / 3.5
    covered = 0
    trials = 300
    for trial in range(trials):
        values = rng.beta(0.5, 3.0, size=400)
        low, high = confidence_intervals({"m": values}, None, 400, 0.95, seed=trial)["m"]
        covered += low <= truth <= high
    assert 0.91 <= covered / trials <= 0.98


def test_ninety_percent_interval_is_narrower_and_covers_less() -> None:
    rng = np.random.default_rng(1)
    rates = {}
    for confidence in (0.8, 0.95):
        hits = 0
        for trial in range(200):
            values = rng.normal(1.0, 2.0, size=200)
            low, high = confidence_intervals({"m": values}, None, 400, confidence, trial)["m"]
            hits += low <= 1.0 <= high
        rates[confidence] = hits / 200
    assert 0.72 <= rates[0.8] <= 0.88 and rates[0.95] > rates[0.8]


def test_weights_and_nan_values() -> None:
    values = np.tile([1.0, 0.0, np.nan, 0.0], 100)[None, :]
    weights = np.tile([3.0, 1.0, 5.0, 2.0], 100)
    replicates = bootstrap_means(values, weights, 2000, seed=3)
    assert replicates.shape == (2000, 1)
    assert np.nanmean(replicates) == pytest.approx(0.5, abs=0.05)  # weighted mean 3/6


def test_bootstrap_is_deterministic_for_a_seed() -> None:
    values = np.random.default_rng(2).random(300)
    a = confidence_intervals({"m": values}, None, 300, 0.95, seed=5)
    b = confidence_intervals({"m": values}, None, 300, 0.95, seed=5)
    c = confidence_intervals({"m": values}, None, 300, 0.95, seed=6)
    assert a == b and a != c


def test_paired_test_detects_a_planted_difference() -> None:
    rng = np.random.default_rng(4)
    base = rng.beta(0.5, 3.0, size=500)
    better = np.clip(base + rng.normal(0.03, 0.05, size=500), 0, 1)
    result = paired_comparison("ndcg_at_10", better, base, seed=1)
    assert result.diff > 0 and result.ci_low > 0
    assert result.p_wilcoxon < 0.001 and result.p_bootstrap < 0.01
    assert result.effect_size > 0.3 and result.rank_biserial > 0.3


def test_paired_test_finds_no_difference_under_the_null() -> None:
    """Exchangeable pairs: p < 0.05 in about 5% of 200 simulated comparisons, not more."""
    rng = np.random.default_rng(5)
    rejections = {"wilcoxon": 0, "bootstrap": 0}
    for trial in range(200):
        user_level = rng.beta(0.5, 3.0, size=300)
        a = np.clip(user_level + rng.normal(0, 0.05, 300), 0, 1)
        b = np.clip(user_level + rng.normal(0, 0.05, 300), 0, 1)
        result = paired_comparison("m", a, b, samples=400, seed=trial)
        rejections["wilcoxon"] += result.p_wilcoxon < 0.05
        rejections["bootstrap"] += result.p_bootstrap < 0.05
    assert rejections["wilcoxon"] <= 20 and rejections["bootstrap"] <= 22


def test_identical_models_and_mismatched_users() -> None:
    values = np.random.default_rng(6).random(50)
    same = paired_comparison("m", values, values.copy())
    assert same.diff == 0 and same.p_wilcoxon == 1.0 and same.rank_biserial == 0.0
    with pytest.raises(ValueError, match="shape"):
        paired_comparison("m", values, values[:10])
    assert rank_biserial(np.array([1.0, 2.0, -0.5])) == pytest.approx((5 - 1) / 6)
